// Reads a CAR file with @ipld/car and checks every block against its CID's multihash
// (sha2-256 or identity), as a trustless client does. Prints JSON:
// {"version":1,"roots":["<cid>"],"blocks":["<cid>", ...]} in file order; exits 1 on a bad block
// or a malformed CAR.
// Usage: node car.mjs FILE
import { readFile } from 'node:fs/promises'
import { CarBlockIterator } from '@ipld/car/iterator'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

const bytes = await readFile(process.argv[2])
const reader = await CarBlockIterator.fromBytes(bytes)
const roots = (await reader.getRoots()).map(String)
const blocks = []
for await (const { cid, bytes: data } of reader) {
  let ok
  if (cid.multihash.code === sha256.code) {
    ok = equals((await sha256.digest(data)).digest, cid.multihash.digest)
  } else if (cid.multihash.code === 0) {
    ok = equals(data, cid.multihash.digest)
  } else {
    throw new Error(`unsupported hash 0x${cid.multihash.code.toString(16)} in ${cid}`)
  }
  if (!ok) {
    console.error(`block ${cid} does not match its hash`)
    process.exit(1)
  }
  blocks.push(String(cid))
}
console.log(JSON.stringify({ version: reader.version, roots, blocks }))

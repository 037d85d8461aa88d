// CAR oracle for cairn-unixfs's tests (crates/unixfs/tests/car_js.rs), on @ipld/car.
//
//   node car.mjs read FILE   prints {"version","roots":[cid…],"blocks":[[cid, length]…]} of a
//                            CAR (v1 or v2); sha2-256 blocks are hash-checked (exit 1 on a
//                            mismatch).
//   node car.mjs write FILE  writes a CARv1 of a small dag-cbor + raw DAG (two roots) and prints
//                            the same JSON for it.
import { readFile, writeFile } from 'node:fs/promises'
import { CarReader, CarWriter } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

async function describe (bytes) {
  const reader = await CarReader.fromBytes(bytes)
  const roots = (await reader.getRoots()).map(String)
  const blocks = []
  for await (const { cid, bytes: data } of reader.blocks()) {
    if (cid.multihash.code === sha256.code) {
      const digest = await sha256.digest(data)
      if (!equals(digest.bytes, cid.multihash.bytes)) {
        throw new Error(`hash mismatch for ${cid}`)
      }
    }
    blocks.push([cid.toString(), data.length])
  }
  return { version: reader.version, roots, blocks }
}

async function block (codec, value) {
  const bytes = codec.encode(value)
  return { cid: CID.create(1, codec.code, await sha256.digest(bytes)), bytes }
}

async function write (file) {
  const leaf = await block(raw, new TextEncoder().encode('hello from @ipld/car\n'))
  const big = await block(raw, new Uint8Array(300000).map((_, i) => (i * 7) & 0xff))
  const mid = await block(dagCbor, { leaf: leaf.cid, big: big.cid, n: 42, s: 'x' })
  const root = await block(dagCbor, { list: [mid.cid, leaf.cid], bytes: new Uint8Array([1, 2, 3]) })
  const { writer, out } = CarWriter.create([root.cid, leaf.cid])
  const chunks = []
  const collect = (async () => { for await (const c of out) chunks.push(c) })()
  for (const b of [root, mid, leaf, big]) await writer.put(b)
  await writer.close()
  await collect
  const bytes = Buffer.concat(chunks)
  await writeFile(file, bytes)
  return describe(bytes)
}

const [mode, file] = process.argv.slice(2)
try {
  const result = mode === 'read' ? await describe(await readFile(file)) : await write(file)
  process.stdout.write(JSON.stringify(result) + '\n')
} catch (e) {
  process.stderr.write(`car.mjs: ${e.message}\n`)
  process.exit(1)
}

// Oracle for cairn's UnixFS importer: imports a file or directory with ipfs-unixfs-importer
// 17.1.1 (the JS reference importer; its `unixfs-v0-2015` settings are Kubo's `ipfs add`
// defaults) and prints one JSON line per entry: {"path","cid","size"}.
//
// Usage: node oracle.mjs <jobs.json>, where the file holds [{"opts": {...}, "path": "..."}, ...];
// each output line also carries "job", the job's index. Options (mapped below to the JS
// importer's):
//   cidVersion 0|1, rawLeaves bool, chunker "size-N" | "rabin-MIN-AVG-MAX",
//   trickle bool, wrap bool, hidden bool, preserveMode bool, preserveMtime bool,
//   hash "sha2-256"|"sha2-512", inlineLimit N (absent: no inlining), maxFileLinks N,
//   hamtEstimation "links"|"block".
// The JS importer has neither a hash option nor inlining: for those the DAG it builds with
// sha2-256 is rebuilt bottom-up (every link re-pointed, Tsize recomputed, each block re-hashed,
// or given an identity CIDv1 when at most inlineLimit bytes), which is what Kubo's CID builder
// does to the same DAG.
//
// Run from a directory whose node_modules holds the packages of
// ../shared/compat/kubo-client-smoke (the Rust test links it there).
import fs from 'node:fs'
import path from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize, rabin } from 'ipfs-unixfs-importer/chunker'
import { balanced, trickle } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'
import * as dagPB from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { identity } from 'multiformats/hashes/identity'

const jobs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
let opts = {}

function chunker () {
  const spec = opts.chunker ?? 'size-262144'
  const parts = spec.split('-')
  if (parts[0] === 'size') return fixedSize({ chunkSize: Number(parts[1]) })
  if (parts[0] === 'rabin' && parts.length === 4) {
    return rabin({ minChunkSize: Number(parts[1]), avgChunkSize: Number(parts[2]), maxChunkSize: Number(parts[3]) })
  }
  throw new Error(`oracle: unsupported chunker ${spec}`)
}

function mtimeOf (st) {
  const ns = st.mtimeNs // bigint
  let secs = ns / 1000000000n
  let nsecs = ns % 1000000000n
  if (nsecs < 0n) { secs -= 1n; nsecs += 1000000000n }
  // Kubo (boxo FSNode.SetModTime) stores no nanoseconds field when they are 0; the JS
  // importer writes whatever it is given, so give it none then.
  return nsecs === 0n ? { secs } : { secs, nsecs: Number(nsecs) }
}

function meta (st, isSymlink) {
  const m = {}
  if (opts.preserveMode && !isSymlink) m.mode = Number(st.mode & 0o7777n)
  if (opts.preserveMtime) m.mtime = mtimeOf(st)
  return m
}

// Entries in Kubo's walk order: names sorted bytewise, dotfiles skipped unless `hidden`.
function * walk (abs, rel) {
  const st = fs.lstatSync(abs, { bigint: true })
  if (st.isDirectory()) {
    yield { path: rel, ...meta(st, false) }
    const names = fs.readdirSync(abs).filter(n => opts.hidden || !n.startsWith('.'))
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    for (const n of names) yield * walk(path.join(abs, n), rel + '/' + n)
  } else if (st.isSymbolicLink()) {
    throw new Error('oracle: the JS importer has no symlinks')
  } else {
    yield { path: rel, content: fs.readFileSync(abs), ...meta(st, false) }
  }
}

async function run (job, input) {
  const bs = new MemoryBlockstore()
  const options = {
    cidVersion: opts.cidVersion ?? 0,
    rawLeaves: opts.rawLeaves ?? false,
    chunker: chunker(),
    // boxo's trickle makes non-raw leaves UnixFS `raw` and always puts a node above the leaves.
    leafType: opts.trickle ? 'raw' : 'file',
    reduceSingleLeafToSelf: !opts.trickle,
    layout: opts.trickle
    ? trickle({ maxChildrenPerNode: opts.maxFileLinks ?? 174, layerRepeat: 4 })
    : balanced({ maxChildrenPerNode: opts.maxFileLinks ?? 174 }),
    // Kubo's Import.UnixFSHAMTDirectorySizeEstimation: links (default) or block.
  shardSplitStrategy: opts.hamtEstimation === 'block' ? 'block-bytes' : 'links-bytes',
    shardSplitThresholdBytes: 262144,
    wrapWithDirectory: opts.wrap ?? false,
    fieldOrder: 'links-first'
  }
  const out = []
  for await (const e of importer(walk(input, path.basename(input)), bs, options)) {
    out.push({ path: e.path, cid: e.cid, size: e.size })
  }

  // --- the hash / inline transform -------------------------------------------------------
  const hasher = (opts.hash ?? 'sha2-256') === 'sha2-256' ? sha256 : opts.hash === 'sha2-512' ? sha512 : null
  if (hasher == null) throw new Error(`oracle: unsupported hash ${opts.hash}`)
  const transform = hasher !== sha256 || opts.inlineLimit != null
  const memo = new Map()
  async function getBlock (cid) {
    const parts = []
    for await (const p of bs.get(cid)) parts.push(p)
    return Buffer.concat(parts)
  }
  async function rebuild (cid) {
    const key = cid.toString()
    if (memo.has(key)) return memo.get(key)
    let bytes = await getBlock(cid)
    let tsize = bytes.length
    if (cid.code === dagPB.code) {
      const node = dagPB.decode(bytes)
      const links = []
      for (const l of node.Links) {
        const c = await rebuild(l.Hash)
        links.push({ Hash: c.cid, Name: l.Name, Tsize: c.tsize })
        tsize += c.tsize
      }
      bytes = dagPB.encode({ Data: node.Data, Links: links })
      tsize = bytes.length + links.reduce((a, l) => a + l.Tsize, 0)
    }
    let newCid
    if (opts.inlineLimit != null && bytes.length <= opts.inlineLimit) {
      newCid = CID.createV1(cid.code, identity.digest(bytes))
    } else {
      const digest = await hasher.digest(bytes)
      newCid = cid.version === 0 && hasher === sha256 ? CID.createV0(digest) : CID.createV1(cid.code, digest)
    }
    const r = { cid: newCid, tsize }
    memo.set(key, r)
    return r
  }
  for (const e of out) {
    let cid = e.cid
    let size = Number(e.size)
    if (transform) {
      const r = await rebuild(e.cid)
      cid = r.cid
      size = r.tsize
    }
    console.log(JSON.stringify({ job, path: e.path, cid: cid.toString(), size }))
  }
}

for (let i = 0; i < jobs.length; i++) {
  opts = jobs[i].opts
  await run(i, jobs[i].path)
}

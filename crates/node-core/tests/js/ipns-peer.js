#!/usr/bin/env node
// ipns-peer: a scriptable Helia IPNS peer for cairn's IPNS-over-DHT interop tests.
//
// A Rust test spawns `node ipns-peer.js --control [--seed TEXT]`, dials it into a
// cairn node (or the other way round) and publishes/resolves IPNS names through
// the Amino DHT in both directions. Stack: Helia 7 (light) + libp2p 3, TCP, Noise,
// Yamux, identify, ping, kad-dht on /ipfs/kad/1.0.0 in server mode with loopback
// addresses kept, and @helia/ipns 10 over Helia's routing (= the DHT only: no
// bootstrappers, mDNS, delegated/HTTP routing or pubsub). Listens on
// /ip4/127.0.0.1/tcp/PORT only (--port P, default 0 = random).
//
// Options: --seed TEXT|HEX64 (deterministic Ed25519 identity: the 32-byte seed is
// HEX64 itself or sha256(TEXT)), --port P, --control, --help.
//
// Protocol (--control): the first stdout line is
//   {"event":"ready","peerId":"12D3...","multiaddrs":["/ip4/127.0.0.1/tcp/P/p2p/12D3..."]}
// then every stdin line is a JSON command answered by exactly one stdout line:
//   {"event":"reply","id":N,"ok":true,"result":{...}}  or  {"event":"reply","id":N,"ok":false,"error":"..."}
// Network commands take "timeoutMs" (default 20000). Binary data is standard base64.
//   {"id":1,"cmd":"id"}                -> {peerId, multiaddrs, protocols, dhtMode, routingTable}
//   {"cmd":"dial","addr":MA}           -> {peerId, routingTable}; answers once the peer is in the DHT
//                                         routing table (fails on timeout)
//   {"cmd":"publish","value":"/ipfs/CID","lifetimeMs":L?,"ttlMs":T?,"sequence":N?,"key":NAME?,"v1Compatible":B?}
//        -> {name:"k51...", peerId, sequence, record, routingKey, dht:{acked:[peer], errors:[{from,error}]}}
//        Without "sequence" this is Helia's own ipns.publish (sequence = last published + 1);
//        with it the record is signed with that sequence and put through the same IPNS routers.
//        "key" names a keychain key (created as Ed25519 if missing); default: the node's identity.
//   {"cmd":"resolve","name":"k51...|12D3...|/ipns/...","nocache":true?}
//        -> {value, sequence, record, valuesFrom:[peer]}; "nocache" resolves with an empty
//        IPNS cache (a fresh resolver), so the answer comes from the DHT (the local DHT
//        record store included, as in any kad-dht GET_VALUE).
//   {"cmd":"put-raw","key":B64,"value":B64}  -> dht.put: {acked:[peer], errors:[{from,error}], closest:[peer]}
//   {"cmd":"get-raw","key":B64}              -> dht.get: {found, best:B64|null, values:[{from,value}],
//        raw:[{from,value}] (records in GET_VALUE answers before validation), errors:[{from,error}]}
//   {"cmd":"make-record","value":"/ipfs/..","sequence":N,"lifetimeMs":L,"ttlMs":T?,"v1Compatible":B?,"key":NAME?}
//        -> {record, routingKey, name, peerId}: signed, not published (negative lifetimeMs = expired)
//   {"cmd":"stop"}                           -> {} then the node stops and the process exits 0
// Errors (bad JSON, unknown commands, failed network calls) become ok:false replies; the
// process only ends on "stop", stdin EOF, SIGINT or SIGTERM.

import './polyfills.js'
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { createIPNSRecord, IPNSEntry, ipns, ipnsResolver, ipnsSelector, ipnsValidator, multihashToIPNSRoutingKey } from '@helia/ipns'
import { withLibp2pLight } from '@helia/libp2p'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair, generateKeyPairFromSeed, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import { createHeliaLight } from 'helia'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'

// ---------- arguments ----------
const args = { port: 0 }
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]
  if (a === '--control' || a === '--help') args[a.slice(2)] = true
  else if (a === '--seed' || a === '--port') args[a.slice(2)] = process.argv[++i]
  else { console.error(`unexpected argument ${a} (see --help)`); process.exit(2) }
}
if (args.help) {
  const { readFileSync } = await import('node:fs')
  const head = readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1)
  console.log(head.slice(0, head.findIndex(l => !l.startsWith('//'))).map(l => l.replace(/^\/\/ ?/, '')).join('\n'))
  process.exit(0)
}

const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n')
const b64 = bytes => Buffer.from(bytes).toString('base64')
const unb64 = (s, what) => {
  if (typeof s !== 'string') throw new Error(`${what} must be a base64 string`)
  return new Uint8Array(Buffer.from(s, 'base64'))
}
const DEFAULT_TIMEOUT = 20000
const str = err => String(err?.message ?? err)

// ---------- node ----------
const privateKey = args.seed
  ? await generateKeyPairFromSeed('Ed25519', /^[0-9a-f]{64}$/i.test(args.seed) ? Buffer.from(args.seed, 'hex') : createHash('sha256').update(args.seed).digest())
  : await generateKeyPair('Ed25519')

const helia = withLibp2pLight(createHeliaLight({
  blockstore: new MemoryBlockstore(),
  datastore: new MemoryDatastore(),
  routers: [], // only the libp2p router (the DHT) that withLibp2pLight adds
  blockBrokers: []
}), {
  privateKey,
  addresses: { listen: [`/ip4/127.0.0.1/tcp/${Number(args.port)}`] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  peerDiscovery: [],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({
      protocol: '/ipfs/kad/1.0.0',
      clientMode: false, // server mode: answer GET_VALUE/PUT_VALUE from peers
      peerInfoMapper: passthroughMapper, // keep 127.0.0.1 addresses (the default drops private ones)
      allowQueryWithZeroPeers: true
    })
  }
})
await helia.start()
const libp2p = helia.libp2p
const dht = libp2p.services.dht

// The node's own key, as the key type Helia's keychain and @helia/ipns use
// (@ipshipyard/crypto), stored under the keychain name 'self': libp2p was given
// the key directly, so it is not in Helia's keychain yet.
const selfKey = await (await helia.getCrypto('Ed25519')).privateKeyFromProtobuf(privateKeyToProtobuf(privateKey))
await helia.keychain.importKey('self', selfKey)

// @helia/ipns over Helia's routing; created after start so that its background
// republisher stays off (records change only when a test says so).
const name = ipns(helia)
// ipns() installs the /ipns/ validator and selector on the DHT it finds; make
// sure of it, since without them kad-dht rejects every IPNS PUT_VALUE.
dht.validators.ipns ??= async (key, value) => { await ipnsValidator(key, value, helia.keychain) }
dht.selectors.ipns ??= async (key, values) => ipnsSelector(key, values.map(v => IPNSEntry.decode(v)))

const peerIdOf = publicKey => base58btc.baseEncode(publicKey.toMultihash().bytes)
const nameOf = publicKey => publicKey.toCID().toString(base36)

async function loadKey (keyName) {
  if (keyName == null || keyName === 'self') return selfKey
  try { return await helia.keychain.exportKey(keyName) } catch (err) {
    if (err.name !== 'NotFoundError') throw err
    return helia.keychain.generateKey(keyName)
  }
}

function recordInfo (marshalled) {
  const rec = IPNSEntry.decode(marshalled)
  const data = rec.data ? dagCbor.decode(rec.data) : {}
  return {
    value: new TextDecoder().decode(data.Value ?? rec.value ?? new Uint8Array()),
    sequence: Number(data.Sequence ?? rec.sequence ?? 0),
    ttlNs: String(data.TTL ?? rec.ttl ?? ''),
    validity: new TextDecoder().decode(data.Validity ?? rec.validity ?? new Uint8Array())
  }
}

// kad-dht reports its query events through onProgress; keep the interesting ones
function dhtCollector () {
  const c = { acked: [], errors: [], raw: [], values: [], closest: [] }
  c.onProgress = evt => {
    const e = evt.detail
    if (e == null || typeof e !== 'object') return
    const from = e.from?.toString()
    if (e.name === 'PEER_RESPONSE' && e.messageName === 'PUT_VALUE') c.acked.push(from)
    else if (e.name === 'PEER_RESPONSE' && e.messageName === 'GET_VALUE' && e.record != null) c.raw.push({ from, value: b64(e.record.value) })
    else if (e.name === 'VALUE') c.values.push({ from, value: b64(e.value) })
    else if (e.name === 'QUERY_ERROR') c.errors.push({ from, error: str(e.error) })
    else if (e.name === 'FINAL_PEER') c.closest.push(e.peer.id.toString())
  }
  return c
}

// ---------- commands ----------
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const rtSize = () => dht.routingTable.size

async function dial (cmd, timeout) {
  const deadline = Date.now() + timeout
  const conn = await libp2p.dial(multiaddr(cmd.addr), { signal: AbortSignal.timeout(timeout) })
  // identify runs on its own after connecting; the DHT's topology listener adds
  // the peer to the routing table once identify shows it speaks /ipfs/kad/1.0.0
  while (await dht.routingTable.find(conn.remotePeer) == null) {
    if (Date.now() > deadline) throw new Error(`connected to ${conn.remotePeer} but it did not enter the DHT routing table within ${timeout} ms`)
    await sleep(50)
  }
  return { peerId: conn.remotePeer.toString(), routingTable: rtSize() }
}

async function publish (cmd, timeout) {
  if (typeof cmd.value !== 'string') throw new Error('publish needs "value" (e.g. "/ipfs/CID")')
  const keyName = cmd.key ?? 'self'
  const c = dhtCollector()
  const opts = { signal: AbortSignal.timeout(timeout), onProgress: c.onProgress, lifetime: cmd.lifetimeMs, ttl: cmd.ttlMs, v1Compatible: cmd.v1Compatible }
  let record, publicKey
  if (cmd.sequence == null) {
    ({ record, publicKey } = await name.publish(keyName, cmd.value, opts))
  } else {
    // explicit sequence: sign it ourselves, then put it where ipns.publish would
    const key = await loadKey(keyName)
    publicKey = key.publicKey
    const lifetime = cmd.lifetimeMs ?? 48 * 3600 * 1000
    record = await createIPNSRecord(key, cmd.value, BigInt(cmd.sequence), lifetime, {
      v1Compatible: cmd.v1Compatible, ttlNs: cmd.ttlMs != null ? BigInt(cmd.ttlMs) * 1000000n : undefined
    })
    const routingKey = multihashToIPNSRoutingKey(publicKey.toMultihash())
    const bytes = IPNSEntry.encode(record)
    await Promise.all(name.routers.map(r => r.put(routingKey, bytes, { ...opts, metadata: { keyName, lifetime } })))
  }
  const bytes = IPNSEntry.encode(record)
  return {
    name: nameOf(publicKey),
    peerId: peerIdOf(publicKey),
    sequence: recordInfo(bytes).sequence,
    record: b64(bytes),
    routingKey: b64(multihashToIPNSRoutingKey(publicKey.toMultihash())),
    dht: { acked: c.acked, errors: c.errors }
  }
}

async function resolve (cmd, timeout) {
  if (typeof cmd.name !== 'string') throw new Error('resolve needs "name"')
  const key = cmd.name.startsWith('/ipns/') ? cmd.name : `/ipns/${cmd.name}`
  const c = dhtCollector()
  // nocache: a throwaway resolver over an empty datastore, so neither the IPNS
  // cache nor our own published records are consulted, only the routing
  const resolver = cmd.nocache
    ? ipnsResolver({ datastore: new MemoryDatastore(), routing: helia.routing, logger: helia.logger, keychain: helia.keychain })
    : name
  let last
  // both resolvers take a string "/ipns/<k51...|12D3...|Qm...>" and follow recursive records
  for await (const r of resolver.resolve(key, { signal: AbortSignal.timeout(timeout), onProgress: c.onProgress, nocache: Boolean(cmd.nocache) })) last = r
  if (last == null) throw new Error('no result')
  const bytes = IPNSEntry.encode(last.record)
  return { value: last.value, sequence: recordInfo(bytes).sequence, record: b64(bytes), valuesFrom: c.values.map(v => v.from) }
}

// straight to kad-dht: the Rust test pushes hand-made records and reads what peers hold
async function putRaw (cmd, timeout) {
  const c = dhtCollector()
  // dht.put stores the record locally (unvalidated), then PUT_VALUEs it to the closest peers
  for await (const e of dht.put(unb64(cmd.key, 'key'), unb64(cmd.value, 'value'), { signal: AbortSignal.timeout(timeout), onProgress: c.onProgress })) void e
  return { acked: c.acked, errors: c.errors, closest: c.closest }
}

async function getRaw (cmd, timeout) {
  const c = dhtCollector()
  let best = null
  try {
    // yields the query events, then the best VALUE (local store and peers, validated and selected)
    for await (const e of dht.get(unb64(cmd.key, 'key'), { signal: AbortSignal.timeout(timeout), onProgress: c.onProgress })) {
      if (e.name === 'VALUE') best = b64(e.value)
    }
  } catch (err) {
    if (c.raw.length === 0 && c.values.length === 0) throw err
    c.errors.push({ from: null, error: str(err) })
  }
  return { found: best != null, best, values: c.values, raw: c.raw, errors: c.errors }
}

async function makeRecord (cmd) {
  if (typeof cmd.value !== 'string') throw new Error('make-record needs "value"')
  const key = await loadKey(cmd.key)
  const record = await createIPNSRecord(key, cmd.value, BigInt(cmd.sequence ?? 1), cmd.lifetimeMs ?? 48 * 3600 * 1000, {
    v1Compatible: cmd.v1Compatible ?? true, ttlNs: cmd.ttlMs != null ? BigInt(cmd.ttlMs) * 1000000n : undefined
  })
  return {
    record: b64(IPNSEntry.encode(record)),
    routingKey: b64(multihashToIPNSRoutingKey(key.publicKey.toMultihash())),
    name: nameOf(key.publicKey),
    peerId: peerIdOf(key.publicKey)
  }
}

async function control (cmd) {
  const timeout = Number(cmd.timeoutMs ?? DEFAULT_TIMEOUT)
  switch (cmd.cmd) {
    case 'id': return { peerId: libp2p.peerId.toString(), multiaddrs: libp2p.getMultiaddrs().map(String), protocols: libp2p.getProtocols(), dhtMode: dht.getMode(), routingTable: rtSize() }
    case 'dial': return dial(cmd, timeout)
    case 'publish': return publish(cmd, timeout)
    case 'resolve': return resolve(cmd, timeout)
    case 'put-raw': return putRaw(cmd, timeout)
    case 'get-raw': return getRaw(cmd, timeout)
    case 'make-record': return makeRecord(cmd)
    case 'stop': setTimeout(() => shutdown(0), 10); return {}
    default: throw new Error(`unknown cmd ${cmd.cmd}`)
  }
}

let stopping = false
async function shutdown (code) {
  if (stopping) return
  stopping = true
  try { await helia.stop() } catch {}
  process.exit(code)
}
process.on('SIGINT', () => shutdown(0))
process.on('SIGTERM', () => shutdown(0))

// from here on, keep the process alive whatever a background task throws
process.on('unhandledRejection', err => emit({ event: 'error', error: str(err) }))
process.on('uncaughtException', err => emit({ event: 'error', error: str(err) }))
emit({ event: 'ready', peerId: libp2p.peerId.toString(), multiaddrs: libp2p.getMultiaddrs().map(String) })

if (args.control) {
  // commands run concurrently; each reply carries its id
  const rl = createInterface({ input: process.stdin })
  rl.on('line', async line => {
    if (!line.trim()) return
    let cmd
    try { cmd = JSON.parse(line) } catch (err) { emit({ event: 'reply', id: null, ok: false, error: `bad json: ${err.message}` }); return }
    try {
      emit({ event: 'reply', id: cmd.id ?? null, ok: true, result: await control(cmd) })
    } catch (err) {
      // an AbortSignal.timeout() firing surfaces as a bare "The operation was aborted"
      const timedOut = err?.name === 'AbortError' || err?.name === 'TimeoutError'
      const error = timedOut ? `${cmd.cmd} timed out after ${Number(cmd.timeoutMs ?? DEFAULT_TIMEOUT)} ms (${str(err)})` : str(err)
      emit({ event: 'reply', id: cmd.id ?? null, ok: false, error })
    }
  })
  rl.on('close', () => shutdown(0))
}

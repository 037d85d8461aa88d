#!/usr/bin/env node
// selftest: two ipns-peer.js instances talking IPNS over the DHT, no cairn involved.
// Checks the peer itself before the Rust tests rely on it. Run after `npm ci --ignore-scripts`:
//   node selftest.mjs        (exit code 0 iff every check passed; prints every command and reply)
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'

const cidOf = text => `/ipfs/${CID.createV1(raw.code, identity.digest(new TextEncoder().encode(text)))}`
let failures = 0
const check = (what, cond, detail = '') => {
  if (!cond) failures++
  console.log(`${cond ? 'PASS' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`)
}

// a peer process driven over stdin/stdout
function startPeer (label, seed) {
  const child = spawn(process.execPath, [new URL('./ipns-peer.js', import.meta.url).pathname, '--control', '--seed', seed], { stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting = new Map()
  let nextId = 1
  let onReady
  const ready = new Promise(resolve => { onReady = resolve })
  createInterface({ input: child.stdout }).on('line', line => {
    const msg = JSON.parse(line)
    if (msg.event === 'ready') onReady(msg)
    else if (msg.event === 'reply' && waiting.has(msg.id)) { waiting.get(msg.id)(msg); waiting.delete(msg.id) } else console.log(`${label} ${line}`)
  })
  const call = (cmd, fields = {}) => new Promise(resolve => {
    const id = nextId++
    const req = { id, cmd, ...fields }
    waiting.set(id, reply => {
      const shown = JSON.stringify(reply)
      console.log(`${label} <- ${JSON.stringify(req)}\n${label} -> ${shown.length > 600 ? shown.slice(0, 600) + '...' : shown}`)
      resolve(reply)
    })
    child.stdin.write(JSON.stringify(req) + '\n')
  })
  const exited = new Promise(resolve => child.on('exit', code => resolve(code)))
  return { label, ready, call, exited, child }
}

const A = startPeer('A', 'ipns-selftest-a')
const B = startPeer('B', 'ipns-selftest-b')
const timer = setTimeout(() => { console.log('FAIL overall timeout'); A.child.kill(); B.child.kill(); process.exit(1) }, 120000)
try {
  const [ra, rb] = [await A.ready, await B.ready]
  console.log(`A ready ${JSON.stringify(ra)}\nB ready ${JSON.stringify(rb)}`)

  const d = await B.call('dial', { addr: ra.multiaddrs[0] })
  check('B dials A, A in B\'s routing table', d.ok && d.result.peerId === ra.peerId)
  // the inbound side adds B once its own identify finishes
  let rt = 0
  for (let i = 0; i < 50 && rt === 0; i++) { rt = (await A.call('id')).result.routingTable; if (rt === 0) await new Promise(resolve => setTimeout(resolve, 100)) }
  check('B in A\'s routing table', rt >= 1)

  const v1 = cidOf('first'); const v2 = cidOf('second'); const v3 = cidOf('third')
  const p1 = await A.call('publish', { value: v1, lifetimeMs: 3600000, ttlMs: 60000 })
  check('A publishes seq 1, B accepts the PUT_VALUE', p1.ok && p1.result.sequence === 1 && p1.result.dht.acked.includes(rb.peerId), JSON.stringify(p1.result?.dht))
  const r1 = await B.call('resolve', { name: p1.result.name, nocache: true })
  check('B resolves A\'s k51 name to the first value', r1.ok && r1.result.value === v1 && r1.result.sequence === 1)

  const p2 = await A.call('publish', { value: v2, lifetimeMs: 3600000, ttlMs: 60000 })
  check('A publishes again: seq 2', p2.ok && p2.result.sequence === 2)
  const r2 = await B.call('resolve', { name: ra.peerId, nocache: true })
  check('B resolves A\'s peer id to the newer value (seq 2)', r2.ok && r2.result.value === v2 && r2.result.sequence === 2)

  const p5 = await A.call('publish', { value: v1, sequence: 5, v1Compatible: false })
  const r5 = await B.call('resolve', { name: p1.result.name, nocache: true })
  check('explicit sequence 5 (V2-only record) resolves on B', p5.ok && r5.ok && r5.result.sequence === 5 && r5.result.value === v1)

  const pk = await A.call('publish', { value: v3, key: 'other' })
  const rk = await B.call('resolve', { name: pk.result?.name, nocache: true })
  check('publish under a keychain key "other" resolves on B', pk.ok && pk.result.name !== p1.result.name && rk.ok && rk.result.value === v3)

  // hand-made records straight through the DHT
  const m7 = await A.call('make-record', { value: v3, sequence: 7, lifetimeMs: 3600000 })
  check('make-record signs without publishing', m7.ok && m7.result.name === p1.result.name && m7.result.routingKey === p1.result.routingKey)
  const put7 = await A.call('put-raw', { key: m7.result.routingKey, value: m7.result.record })
  check('put-raw of the seq 7 record: B acks', put7.ok && put7.result.acked.includes(rb.peerId), JSON.stringify(put7.result))
  const get7 = await B.call('get-raw', { key: m7.result.routingKey })
  check('get-raw on B returns exactly that record', get7.ok && get7.result.best === m7.result.record)
  const r7 = await B.call('resolve', { name: p1.result.name, nocache: true })
  check('and B resolves it (seq 7)', r7.ok && r7.result.sequence === 7 && r7.result.value === v3)

  const expired = await A.call('make-record', { value: v2, sequence: 9, lifetimeMs: -60000 })
  const putX = await A.call('put-raw', { key: expired.result.routingKey, value: expired.result.record })
  check('put-raw of an expired seq 9 record: B refuses it', putX.ok && !putX.result.acked.includes(rb.peerId) && putX.result.errors.length > 0, JSON.stringify(putX.result))
  const bad = Buffer.from(m7.result.record, 'base64'); bad[bad.length - 1] ^= 1 // flips a bit of the signed CBOR data
  const putB = await A.call('put-raw', { key: m7.result.routingKey, value: bad.toString('base64') })
  check('put-raw of a tampered record: B refuses it', putB.ok && !putB.result.acked.includes(rb.peerId), JSON.stringify(putB.result))
  const getB = await B.call('get-raw', { key: m7.result.routingKey })
  check('B still serves seq 7 as best; A\'s invalid copy shows up only in "raw"', getB.ok && getB.result.best === m7.result.record && getB.result.raw.some(r => r.from === ra.peerId && r.value !== m7.result.record), JSON.stringify(getB.result.errors))

  const unused = await A.call('make-record', { value: v1, key: 'never-published' }) // a valid name nobody published
  const none = await B.call('resolve', { name: unused.result.name, nocache: true, timeoutMs: 5000 })
  check('unknown name: ok:false with an error, process alive', !none.ok && typeof none.error === 'string', none.error)
  const alive = await B.call('id')
  check('B still answers after the failure', alive.ok)
} finally {
  await A.call('stop'); await B.call('stop')
  const codes = [await A.exited, await B.exited]
  check('both exit 0 on stop', codes.every(c => c === 0), JSON.stringify(codes))
  clearTimeout(timer)
}
console.log(failures === 0 ? 'selftest: all checks passed' : `selftest: ${failures} check(s) FAILED`)
process.exit(failures === 0 ? 0 : 1)

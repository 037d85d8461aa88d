// Fetches content from a gateway with @helia/verified-fetch, which asks the gateway for raw
// blocks (trustless) and verifies each against its CID before using it. No libp2p, no other
// routers or gateways: only the one given. Prints one JSON line per URL:
// {"url", "status", "contentType", "bytes", "sha256"}; exits 1 if a fetch throws.
// Usage: node verified.mjs GATEWAY_URL ipfs://CID[/path] ...
import { createHash } from 'node:crypto'

// verified-fetch's dependencies use Promise.withResolvers (Node 22); Node 20 lacks it.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new Promise((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}
const [gateway, ...urls] = process.argv.slice(2)
const { createHeliaLight } = await import('helia')
const { withHTTP } = await import('@helia/http')
const { createVerifiedFetchWithHelia } = await import('@helia/verified-fetch')

// A Helia with no libp2p and no delegated routers: blocks come only from the gateway given
// (as trustless `application/vnd.ipld.raw` requests), so no traffic leaves this machine.
const helia = withHTTP(createHeliaLight({}), {
  delegatedRouters: [],
  recursiveGateways: [gateway],
  allowInsecure: true,
  allowLocal: true
})
// Helia 7 consults the fallback router (the gateway) only after its other routers finish, and
// with none at all its provider search never ends: give it one that finds nothing.
helia.addRouter({ name: 'none', async * findProviders () {} })
await helia.start()
const verifiedFetch = await createVerifiedFetchWithHelia(helia)
let failed = false
for (const url of urls) {
  try {
    const res = await verifiedFetch(url, { signal: AbortSignal.timeout(120_000) })
    const body = Buffer.from(await res.arrayBuffer())
    console.log(JSON.stringify({
      url,
      status: res.status,
      contentType: res.headers.get('content-type'),
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex')
    }))
  } catch (e) {
    failed = true
    console.log(JSON.stringify({ url, error: String(e?.stack ?? e) }))
  }
}
await verifiedFetch.stop()
await helia.stop()
process.exit(failed ? 1 : 0)

// A Bluesky PDS for tests/pds: @atproto/pds configured from PDS_* env (see conftest.py), bound to 127.0.0.1.
// Refuses to start unless PDS_DID_PLC_URL points at the local PLC (http://localhost:<port>: the PDS's
// identity resolver refuses IP-address hosts), so nothing reaches plc.directory.
// Prints "PDS ready http://127.0.0.1:<port>" once it listens.
import { PDS, envToCfg, envToSecrets, readEnv } from '@atproto/pds'

const env = readEnv()
const plcUrl = new URL(env.didPlcUrl ?? 'https://plc.directory')
if (plcUrl.hostname !== 'localhost') {
  console.error(`PDS_DID_PLC_URL must be the local PLC at http://localhost:<port>, not ${plcUrl.href}`)
  process.exit(2)
}
for (const name of ['bskyAppViewUrl', 'modServiceUrl', 'reportServiceUrl', 'entrywayUrl', 'emailSmtpUrl']) {
  if (env[name]) {
    console.error(`${name} is set; the test PDS talks to no other service`)
    process.exit(2)
  }
}
env.crawlers = [] // no relay/BGS to notify

const pds = await PDS.create(envToCfg(env), envToSecrets(env))
// PDS.start() listens on every interface; keep it on loopback.
const listen = pds.app.listen.bind(pds.app)
pds.app.listen = (p, ...rest) => listen(p, '127.0.0.1', ...rest)
await pds.start()
console.log(`PDS ready http://127.0.0.1:${env.port}`)

const stop = async () => {
  await pds.destroy()
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

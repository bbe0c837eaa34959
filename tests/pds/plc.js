// A did:plc directory for tests/pds: @did-plc/server on its in-memory database, bound to 127.0.0.1.
// Env: PLC_PORT (required). Prints "PLC ready http://127.0.0.1:<port>" once it listens.
import plcServer from '@did-plc/server'

const { Database, PlcServer } = plcServer
const port = Number.parseInt(process.env.PLC_PORT ?? '', 10)
if (!Number.isInteger(port) || port <= 0) {
  console.error('PLC_PORT must be a port number')
  process.exit(2)
}

const plc = PlcServer.create({ db: Database.mock(), port })
// PlcServer.start() listens on every interface; keep it on loopback.
const listen = plc.app.listen.bind(plc.app)
plc.app.listen = (p, ...rest) => listen(p, '127.0.0.1', ...rest)
await plc.start()
console.log(`PLC ready http://127.0.0.1:${port}`)

const stop = async () => {
  await plc.destroy()
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

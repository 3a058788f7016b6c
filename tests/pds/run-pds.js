#!/usr/bin/env node
// Starts a throwaway AT Protocol PLC directory (in-memory) and a reference PDS, both on
// 127.0.0.1 free ports with a temp data dir, for tests/platforms/test_bluesky_pds.py.
//
// Prints one line `PDS_READY {"pds": url, "plc": url, "admin_password": ...}` when both
// listen, then runs until SIGTERM/SIGINT or until stdin closes (so a killed test run
// does not leave it behind). Needs Node >= 22 and the packages installed by setup.sh
// (PDS_NODE_MODULES overrides where they are).
'use strict'

const crypto = require('node:crypto')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { createRequire } = require('node:module')

const HOST = '127.0.0.1'
const modules =
  process.env.PDS_NODE_MODULES ||
  path.resolve(__dirname, '..', '..', '.venv', 'pds', 'node_modules')
const requireDep = createRequire(path.join(modules, '..', 'package.json'))

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

// Both servers call app.listen(port) (all interfaces); bind them to loopback only.
function listenOnLoopback(app) {
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, HOST, ...rest.filter((a) => typeof a === 'function'))
}

async function main() {
  const plcLib = requireDep('@did-plc/server')
  const pdsLib = requireDep('@atproto/pds')

  const plcPort = await freePort()
  const plc = plcLib.PlcServer.create({ db: plcLib.Database.mock(), port: plcPort })
  listenOnLoopback(plc.app)
  await plc.start()
  const plcUrl = `http://${HOST}:${plcPort}`

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'promo-pds-'))
  const pdsPort = await freePort()
  const adminPassword = crypto.randomBytes(12).toString('hex')
  const env = {
    port: pdsPort,
    hostname: 'localhost',
    devMode: true,
    dataDirectory: dataDir,
    blobstoreDiskLocation: path.join(dataDir, 'blobs'),
    didPlcUrl: plcUrl,
    inviteRequired: false,
    serviceHandleDomains: ['.test'],
    crawlers: [],
    rateLimitsEnabled: false,
    jwtSecret: crypto.randomBytes(16).toString('hex'),
    adminPassword,
    plcRotationKeyK256PrivateKeyHex: crypto.randomBytes(32).toString('hex'),
  }
  const pds = await pdsLib.PDS.create(pdsLib.envToCfg(env), pdsLib.envToSecrets(env))
  listenOnLoopback(pds.app)
  await pds.start()

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    try {
      await pds.destroy()
      await plc.destroy()
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true })
      process.exit(0)
    }
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdin.on('end', stop)
  process.stdin.on('close', stop)
  process.stdin.resume()

  const info = { pds: `http://${HOST}:${pdsPort}`, plc: plcUrl, admin_password: adminPassword }
  process.stdout.write(`PDS_READY ${JSON.stringify(info)}\n`)
}

main().catch((err) => {
  process.stderr.write(`run-pds: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})

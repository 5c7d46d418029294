// Watches every process's command line (/proc/*/cmdline, which `ps` shows to
// every user) while a test runs a command, and reports any that holds one of
// the given secrets. The watcher is a separate node process, so it keeps
// polling while the test blocks in spawnSync; the secrets reach it through
// its environment, never through its own command line.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const WATCHER = `
const fs = require('node:fs')
const secrets = JSON.parse(process.env.WATCH_SECRETS)
const seenRe = new RegExp(process.env.WATCH_SEEN)
const out = process.env.WATCH_OUT
const hits = new Set(), seen = new Set()
let scans = 0
function scan() {
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid) || pid === String(process.pid)) continue
    let cmd
    try { cmd = fs.readFileSync('/proc/' + pid + '/cmdline', 'latin1').split('\\0').join(' ').trim() } catch { continue }
    if (!cmd) continue
    if (seenRe.test(cmd)) seen.add(pid + ' ' + cmd)
    for (const s of secrets) if (cmd.includes(s)) hits.add(pid + ' ' + cmd.split(s).join('<SECRET>'))
  }
  scans++
  if (scans === 1) fs.writeFileSync(out + '.ready', '')
}
function finish() {
  fs.writeFileSync(out, JSON.stringify({ scans, hits: [...hits], seen: [...seen] }))
  process.exit(0)
}
process.on('SIGTERM', finish)
;(function loop() { scan(); setTimeout(loop, 2) })()
`

export interface CmdlineReport {
  /** how many times /proc was scanned */
  scans: number
  /** "PID cmdline" of every process whose command line held a secret (the secret replaced by <SECRET>) */
  hits: string[]
  /** "PID cmdline" of every process matching `seen`: proves the watcher saw the tools it is about */
  seen: string[]
}

/** Start watching; `stop()` ends the watch and returns what it found. */
export async function watchCmdlines(secrets: string[], seen: RegExp): Promise<{ stop(): Promise<CmdlineReport> }> {
  const dir = mkdtempSync(join(tmpdir(), 'cmdline-watch-'))
  const out = join(dir, 'report.json')
  const child = spawn(process.execPath, ['-e', WATCHER], {
    env: { WATCH_SECRETS: JSON.stringify(secrets), WATCH_SEEN: seen.source, WATCH_OUT: out },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  for (let i = 0; !existsSync(out + '.ready'); i++) {
    if (i > 500) throw new Error('the /proc watcher did not start within 5 s')
    await sleep(10)
  }
  return {
    async stop() {
      child.kill('SIGTERM')
      await exited
      const report = JSON.parse(readFileSync(out, 'utf8')) as CmdlineReport
      rmSync(dir, { recursive: true, force: true })
      return report
    },
  }
}

// Boot to ready under QEMU (TCG here): the appliance the boot test builds
// (Debian stand-in guest, stand-in registry image, two content images),
// first boot against a reboot of the same VM, measured in the same run.
// The ratio is what first boot costs over a plain boot of the finished host.
import type { Test } from 'tap'
import { bootAndWait, buildAppliance, stopVm } from '../helpers/appliance-vm.js'
import type { BenchRow } from './payload.js'

/** The part of tap's Test the appliance helpers use, for a run outside tap: a failed check throws. */
function benchTest(): { t: Test; cleanup: () => Promise<void> } {
  const teardowns: (() => unknown)[] = []
  const fail = (msg: string) => {
    throw new Error(msg)
  }
  const t = {
    comment: (m: string) => process.stderr.write(`  # ${m}\n`),
    pass: () => true,
    fail: (m: string) => fail(m),
    ok: (v: unknown, m: string) => v || fail(m),
    equal: (a: unknown, b: unknown, m: string) => a === b || fail(`${m}: ${String(a)} !== ${String(b)}`),
    teardown: (f: () => unknown) => teardowns.push(f),
  }
  return {
    t: t as unknown as Test,
    cleanup: async () => {
      for (const f of teardowns.reverse()) await f()
    },
  }
}

export async function benchBoot(row: (r: BenchRow) => void): Promise<void> {
  process.stderr.write('boot to ready: building the appliance on the stand-in guest…\n')
  const { t, cleanup } = benchTest()
  try {
    const a = await buildAppliance(t)
    const secs = async (what: string) => {
      const t0 = Date.now()
      const vm = await bootAndWait(t, a, what)
      const s = (Date.now() - t0) / 1000
      await stopVm(a)
      return { s, accel: vm.accel }
    }
    const first = await secs('first boot')
    const again = await secs('reboot')
    row({
      name: 'boot: first boot to ready',
      value: first.s,
      unit: 's',
      note: `${first.accel}; vm --wait: content served, first boot done`,
    })
    row({ name: 'boot: reboot to ready', value: again.s, unit: 's', note: `${again.accel}; the same VM, first boot already done` })
    row({ name: 'boot: first boot / reboot', value: first.s / again.s, unit: 'ratio', note: 'what first boot costs over a plain boot' })
  } finally {
    await cleanup()
  }
}

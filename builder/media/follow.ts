// Follow a growing file (QEMU's serial console log) line by line: for the
// installer's progress and for `vm` showing the console in the foreground.

import { open } from 'node:fs/promises'

/** Follow a growing file line by line until stop() (the serial console to the terminal). */
export function followFile(file: string, onLine: (line: string) => void, intervalMs = 300): { stop(): Promise<void> } {
  let offset = 0
  let partial = ''
  let busy: Promise<void> = Promise.resolve()
  const pump = async () => {
    const fh = await open(file, 'r').catch(() => null)
    if (!fh) return
    try {
      const buf = Buffer.alloc(65536)
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset)
        if (bytesRead === 0) break
        offset += bytesRead
        partial += buf.subarray(0, bytesRead).toString('utf8')
        const lines = partial.split(/\r?\n/)
        partial = lines.pop()!
        for (const l of lines) onLine(l.replace(/\r/g, ''))
      }
    } finally {
      await fh.close()
    }
  }
  const timer = setInterval(() => {
    busy = busy.then(pump).catch(() => {})
  }, intervalMs)
  return {
    async stop() {
      clearInterval(timer)
      await busy
      await pump().catch(() => {})
      if (partial) onLine(partial)
      partial = ''
    },
  }
}

// Round trips through the real consumers: bash for shq, Python's shlex (what
// pykickstart uses on every kickstart command line) for ksq.
import t from 'tap'
import { run } from '../builder/exec.js'
import { UserError } from '../builder/errors.js'
import { assertOneLine, base64Lines, ksq, octal, regexEscape, shq } from '../builder/quote.js'

const SAMPLES = [
  '',
  'plain',
  "it's",
  'a "quoted" word',
  '$(touch /tmp/pwned) `id` $HOME ${x}',
  '# not a comment',
  'mid#word',
  'back\\slash\\',
  "'''",
  '%end',
  'tab\there',
  'ünïcødé ✓',
  ' lead and trail ',
  '-starts-with-dash',
  '!history !! ^x',
  'glob * ? [a]',
]
// JSON.stringify leaves U+2028 as is, which would break the TAP stream itself
const show = (v: string) => JSON.stringify(v).replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
const MULTILINE = ['line1\nline2', '\n%end\n', 'cr\rlf', 'sep\u2028x', 'ctl\x01\x7f', 'nel\x85']

t.test('shq: bash gives back every value exactly', async (t) => {
  for (const v of [...SAMPLES, ...MULTILINE]) {
    const q = shq(v)
    t.notMatch(q, /[\n\r\u2028\u2029\x85]/, `one line for ${show(v)}`)
    const r = await run('bash', ['-c', `printf %s ${q}`])
    t.equal(r.stdout, v, show(v))
  }
})

t.test('shq refuses NUL, naming the field', async (t) => {
  t.throws(
    () => shq('a\0b', 'host.users[0].gecos'),
    new UserError('host.users[0].gecos: contains a NUL character, which a shell word cannot carry'),
  )
})

t.test("ksq: pykickstart's shlex.split(comments=True) gives back every value as one argument", async (t) => {
  const lines = SAMPLES.map((v) => `user --name=x --gecos=${ksq(v)} ${ksq(v)} # trailing comment`)
  const py = 'import sys,shlex,json\nprint(json.dumps([shlex.split(l, comments=True) for l in sys.stdin.read().split("\\n")]))'
  const r = await run('python3', ['-c', py], { input: lines.join('\n'), why: 'to check kickstart quoting with shlex' })
  const parsed = JSON.parse(r.stdout) as string[][]
  SAMPLES.forEach((v, i) => t.same(parsed[i], ['user', '--name=x', `--gecos=${v}`, v], show(v)))
})

t.test('ksq and assertOneLine refuse line breaks and control characters, naming the field', async (t) => {
  for (const v of MULTILINE) t.throws(() => ksq(v, 'host.hostname'), { name: 'UserError', message: /^host\.hostname: contains/ }, show(v))
  t.throws(() => assertOneLine('a\0', 'f'), { message: /^f: contains a NUL/ })
  t.doesNotThrow(() => assertOneLine('tab\tok', 'f'))
})

t.test('base64Lines, regexEscape, octal', async (t) => {
  const data = Buffer.from([...Array(300).keys()].map((i) => i % 256))
  const lines = base64Lines(data)
  t.ok(lines.every((l) => l.length <= 76 && /^[A-Za-z0-9+/=]+$/.test(l)))
  t.same(Buffer.from(lines.join(''), 'base64'), data)
  t.equal(regexEscape('/var/lib/a.b(c)'), '/var/lib/a\\.b\\(c\\)')
  t.equal(octal(0o644), '0644')
  t.equal(octal(0o2750), '2750')
  t.throws(() => octal(0o10000))
})

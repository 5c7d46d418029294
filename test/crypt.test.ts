import t from 'tap'
import { sha512crypt, hashPassword } from '../builder/plan/crypt.js'
import { seededRng } from '../builder/plan/random.js'
import { spawnSync } from 'node:child_process'

// Test vectors from Drepper's "Unix crypt using SHA-256 and SHA-512" (and DESIGN.md).
const vectors: [string, string, number | undefined, string][] = [
  ['Hello world!', 'saltstring', undefined,
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
  ['Hello world!', 'saltstringsaltstring', 10000,
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.'],
  ['This is just a test', 'toolongsaltstring', 5000,
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0'],
  ['we have a short salt string but not a short password', 'short', 77777,
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0'],
  ['a very much shorter password', 'asaltof16chars..', 1400,
    '$6$rounds=1400$asaltof16chars..$h4Xu4/wl870ZluHMyy5gQ2QkdOhNlEzegIsJYy2siJ/bslonsvO5ZXsrXKdiNNC8JE7/uZEJFKh7iKocS31IU.'],
  ['the minimum number is still observed', 'roundstoolow', 10,
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.'],
]

for (const [pw, salt, rounds, expected] of vectors) {
  t.equal(sha512crypt(pw, salt, rounds), expected, `vector: ${pw} / ${salt} / ${rounds}`)
}

t.test('hashPassword gives a valid $6$ hash that verifies with the same salt', async (t) => {
  const h = hashPassword('s3cret pass', seededRng('x'), 'root')
  t.match(h, /^\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}$/)
  const salt = h.split('$')[2]!
  t.equal(sha512crypt('s3cret pass', salt), h)
  t.not(hashPassword('s3cret pass', seededRng('y'), 'root'), h, 'different seed, different salt')
})

t.test('agrees with glibc crypt (mkpasswd from Debian whois) on awkward passwords', async (t) => {
  const pws = ['x', 'pässwörd ünïcode', "quote' \"dq\" $(x) `y` \\", 'a'.repeat(200), ' leading space', '%end #']
  for (const pw of pws) {
    const salt = 'abcdefgh12345678'
    const r = spawnSync('mkpasswd', ['-m', 'sha-512', '-s', '-S', salt], { input: pw, encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    t.equal(sha512crypt(pw, salt), r.stdout.trim(), JSON.stringify(pw))
  }
})

// The shared Handlebars environment: strict about missing data (including
// helper arguments, which Handlebars' strict mode lets through), and only
// templates under kickstart/ or templates/.
import t from 'tap'
import { renderTemplate } from '../builder/render/templates.js'

t.test('a missing field throws instead of printing nothing or "undefined"', async (t) => {
  t.throws(() => renderTemplate('kickstart/ks.cfg.hbs', {}), /not defined|missing value/)
  t.throws(
    () =>
      renderTemplate('templates/butane/appliance.bu.hbs', {
        configDigest: 'x',
        users: [{ name: undefined }],
        directories: [],
        files: [],
        units: [],
      }),
    /json.*missing value/,
  )
})

t.test('only templates under kickstart/ or templates/', async (t) => {
  t.throws(() => renderTemplate('package.json', {}), /must be under/)
  t.throws(() => renderTemplate('kickstart/../package.json', {}), /must be under/)
})

t.test('the json helper writes ASCII that YAML and JSON both read back', async (t) => {
  const YAML = (await import('yaml')).default
  const v = 'a\u2028b "c" \\ é\n'
  const out = renderTemplate('templates/butane/appliance.bu.hbs', {
    configDigest: 'x',
    users: [
      {
        name: v,
        uid: null,
        homeDir: '',
        shell: '',
        primaryGroup: '',
        noUserGroup: false,
        gecos: '',
        groups: [],
        passwordHash: null,
        sshAuthorizedKeys: [],
      },
    ],
    groups: [],
    directories: [],
    files: [],
    units: [],
  })
  t.notMatch(out, /[^\x00-\x7f]/, 'all ASCII')
  t.equal(YAML.parse(out).passwd.users[0].name, v)
})

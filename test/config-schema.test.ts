// schema.json and types.ts describe the same format. The schema is committed
// and shipped because editors (yaml-language-server's $schema line in the
// example config) and `validate` check user configs with it, while the code
// reads them through types.ts: the two must never drift apart.
//
// tsc checks the TypeScript side: FULL below must set every field ConfigInput
// has (DeepRequired) and no other (object literal excess-property check), the
// enum tables must list exactly each union's members, and the required-key
// tables exactly each interface's required keys. This test then checks the
// schema side against the same objects: the fully populated configs validate,
// the schema's property paths are exactly the objects' key paths, and its
// enums and `required` lists are exactly the tables. A field, enum value or
// required key added to one file but not the other fails here or in tsc.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { SCHEMA_PATH } from '../builder/config/load.js'
import type {
  Architecture,
  ArchiveInput,
  ConfigInput,
  DiskInput,
  FleetHostInput,
  FleetInput,
  Flavor,
  ImageInput,
  NetworkInput,
  OutputsInput,
  PasswordInput,
  PermitRootLogin,
  RhelMinor,
  RhelZoneService,
  Size,
  StackImageInput,
  StackRole,
  StorageInput,
  TlsInput,
  UserInput,
} from '../builder/config/types.js'

type DeepRequired<T> = T extends (infer U)[] ? DeepRequired<U>[] : T extends object ? { [K in keyof T]-?: DeepRequired<T[K]> } : T
type KeysOfUnion<T> = T extends unknown ? keyof T : never
type RequiredKeys<T> = { [K in keyof T]-?: undefined extends T[K] ? never : K }[keyof T]
/** Exactly the members of a string union: a missing or extra key is a tsc error. */
type Members<U extends string> = Record<U, true>

interface JsonSchema {
  $ref?: string
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  items?: JsonSchema
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  enum?: unknown[]
  const?: unknown
  definitions?: Record<string, JsonSchema>
}

const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as JsonSchema

// Every password variant, keyed by its field: tsc insists on all of them.
const PASSWORDS: { [K in KeysOfUnion<PasswordInput>]: DeepRequired<Extract<PasswordInput, Record<K, unknown>>> } = {
  plain: { plain: 'correct horse battery staple' },
  hash: { hash: '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1' },
  generate: { generate: true },
  locked: { locked: true },
}

function full(password: PasswordInput): DeepRequired<ConfigInput> {
  return {
    apiVersion: 'mirror-appliance/v1',
    host: {
      hostname: 'registry.lab.example.com',
      rhel: '8.10',
      timezone: 'Europe/Berlin',
      ntpServers: ['ntp.lab.example.com', '192.0.2.123'],
      keyboard: 'de-nodeadkeys',
      language: 'de_DE.UTF-8',
      fips: true,
      network: {
        mode: 'static',
        interface: 'ens3',
        mac: '52:54:00:12:34:56',
        address: '192.0.2.10/24',
        gateway: '192.0.2.1',
        dns: ['192.0.2.53'],
        searchDomains: ['lab.example.com'],
      },
      root: password as DeepRequired<PasswordInput>,
      users: [
        {
          name: 'admin',
          gecos: 'Registry administrator',
          sudo: true,
          password: password as DeepRequired<PasswordInput>,
          sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@laptop'],
        },
      ],
      disk: {
        device: 'vda',
        minSizeGiB: 100,
        firmware: 'uefi',
        layout: { rootGiB: 30, swapGiB: 4, varGiB: 10, registryDataGiB: 'rest' },
      },
      ssh: { permitRootLogin: 'no', passwordAuthentication: true },
      firewall: { keepServices: ['cockpit', 'dhcpv6-client'] },
    },
    registry: {
      flavor: 'distribution',
      port: 5000,
      dataDir: '/srv/registry',
      initUser: { name: 'mirroradmin', password: 's3cret-password', email: 'ops@lab.example.com' },
      tls: {
        mode: 'provided',
        certFile: 'registry.crt',
        keyFile: 'registry.key',
        caFile: 'ca.crt',
        validityDays: 365,
        extraSANs: ['registry', '192.0.2.10'],
        autoRenew: false,
      },
      storage: {
        type: 's3',
        endpoint: 'https://rgw.lab.example.com:8443',
        bucket: 'mirror-registry',
        region: 'us-east-1',
        prefix: 'site1/registry',
        accessKeyFile: 's3-access-key',
        secretKeyFile: 's3-secret-key',
        caFile: 'rgw-ca.crt',
      },
      quay: { userCreation: true },
      // Every role, though one flavor uses only some: the schema allows each (rules.ts checks the flavor).
      images: {
        quay: { ref: 'registry.redhat.io/quay/quay-rhel8:v3.12.1', digest: 'sha256:' + 'b'.repeat(64) },
        redis: { ref: 'registry.redhat.io/rhel8/redis-6:1', digest: 'sha256:' + 'c'.repeat(64) },
        registry: { ref: 'registry.lab.example.com/ops/registry:2.8.3', digest: 'sha256:' + 'd'.repeat(64) },
      },
    },
    content: {
      architecture: 'all',
      images: [{ ref: 'quay.io/org/app:1.0', digest: 'sha256:' + 'a'.repeat(64), target: 'org/app' }],
      archives: [{ path: 'tools.tar', format: 'docker-archive' }],
      ocMirrorArchives: ['mirror_000001.tar'],
      keepPayload: true,
    },
    outputs: {
      oemdrv: true,
      iso: { base: 'rhel.iso' },
      qcow2: { baseImage: 'rhel.qcow2', sizeGiB: 100, compress: true },
      pxe: { baseUrl: 'http://192.0.2.5:8080' },
      bundle: true,
    },
    fleet: {
      hosts: [
        {
          hostname: 'mirror-a.lab.example.com',
          address: '192.0.2.11/24',
          mac: '52:54:00:00:00:11',
          gateway: '192.0.2.1',
          interface: 'ens3',
          disk: 'vda',
          role: 'registry',
        },
      ],
    },
  }
}
const FULL = Object.values(PASSWORDS).map((p) => full(p))

// Enum values, keyed by schema path ('[]' for list items).
const ENUMS: Record<string, Members<string>> = {
  'host.rhel': { '8.4': true, '8.5': true, '8.6': true, '8.7': true, '8.8': true, '8.9': true, '8.10': true } satisfies Members<RhelMinor>,
  'host.network.mode': { dhcp: true, static: true } satisfies Members<NonNullable<NetworkInput['mode']>>,
  'host.disk.firmware': { auto: true, bios: true, uefi: true } satisfies Members<NonNullable<DiskInput['firmware']>>,
  'host.ssh.permitRootLogin': { 'prohibit-password': true, no: true, yes: true } satisfies Members<PermitRootLogin>,
  'host.firewall.keepServices[]': { cockpit: true, 'dhcpv6-client': true } satisfies Members<RhelZoneService>,
  'registry.flavor': { quay: true, distribution: true } satisfies Members<Flavor>,
  'registry.tls.mode': { generate: true, provided: true } satisfies Members<NonNullable<TlsInput['mode']>>,
  'registry.storage.type': { local: true, s3: true } satisfies Members<NonNullable<StorageInput['type']>>,
  'content.architecture': { all: true, amd64: true, arm64: true, ppc64le: true, s390x: true } satisfies Members<Architecture>,
  'content.archives[].format': { auto: true, 'docker-archive': true, 'oci-archive': true, 'oci-dir': true } satisfies Members<
    NonNullable<ArchiveInput['format']>
  >,
  'host.disk.layout.registryDataGiB': { rest: true } satisfies Members<Extract<Size, string>>,
  apiVersion: { 'mirror-appliance/v1': true } satisfies Members<ConfigInput['apiVersion']>,
}

// Required keys of each object, keyed by schema path ('' for the top level).
const REQUIRED: Record<string, Members<string>> = {
  '': { apiVersion: true } satisfies Members<RequiredKeys<ConfigInput>>,
  'host.users[]': { name: true } satisfies Members<RequiredKeys<UserInput>>,
  'content.images[]': { ref: true } satisfies Members<RequiredKeys<ImageInput>>,
  'registry.images.quay': { ref: true, digest: true } satisfies Members<RequiredKeys<StackImageInput>>,
  'registry.images.redis': { ref: true, digest: true } satisfies Members<RequiredKeys<StackImageInput>>,
  'registry.images.registry': { ref: true, digest: true } satisfies Members<RequiredKeys<StackImageInput>>,
  'content.archives[]': { path: true } satisfies Members<RequiredKeys<ArchiveInput>>,
  'outputs.iso': { base: true } satisfies Members<RequiredKeys<NonNullable<OutputsInput['iso']>>>,
  'outputs.pxe': { baseUrl: true } satisfies Members<RequiredKeys<NonNullable<OutputsInput['pxe']>>>,
  fleet: { hosts: true } satisfies Members<RequiredKeys<FleetInput>>,
  'fleet.hosts[]': { hostname: true, address: true, mac: true } satisfies Members<RequiredKeys<FleetHostInput>>,
}

const resolveRef = (s: JsonSchema): JsonSchema => {
  if (!s.$ref) return s
  const name = /^#\/definitions\/(.+)$/.exec(s.$ref)?.[1]
  const def = name ? schema.definitions?.[name] : undefined
  if (!def) throw new Error(`unresolvable $ref ${s.$ref}`)
  return resolveRef(def)
}

interface SchemaFacts {
  paths: Set<string>
  enums: Map<string, unknown[]>
  required: Map<string, string[]>
}

function walkSchema(s: JsonSchema, at: string, facts: SchemaFacts): void {
  s = resolveRef(s)
  if (s.enum) facts.enums.set(at, s.enum)
  if (s.const !== undefined && at) facts.enums.set(at, [...(facts.enums.get(at) ?? []), s.const])
  if (s.required) facts.required.set(at, [...(facts.required.get(at) ?? []), ...s.required])
  for (const [k, sub] of Object.entries(s.properties ?? {})) {
    const p = at ? `${at}.${k}` : k
    facts.paths.add(p)
    walkSchema(sub, p, facts)
  }
  if (s.items) walkSchema(s.items, `${at}[]`, facts)
  for (const sub of [...(s.anyOf ?? []), ...(s.oneOf ?? [])]) walkSchema(sub, at, facts)
}

function walkValue(v: unknown, at: string, out: Set<string>): void {
  if (Array.isArray(v)) for (const item of v) walkValue(item, `${at}[]`, out)
  else if (v !== null && typeof v === 'object') {
    for (const [k, sub] of Object.entries(v)) {
      const p = at ? `${at}.${k}` : k
      out.add(p)
      walkValue(sub, p, out)
    }
  }
}

const facts: SchemaFacts = { paths: new Set(), enums: new Map(), required: new Map() }
walkSchema(schema, '', facts)

t.test('fully populated configs (one per password variant) validate against schema.json', async (t) => {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false })
  const validate = ajv.compile(schema)
  for (const c of FULL) t.ok(validate(c), JSON.stringify(validate.errors, null, 2))
})

t.test('schema properties and ConfigInput fields are the same set', async (t) => {
  const fromTypes = new Set<string>()
  for (const c of FULL) walkValue(c, '', fromTypes)
  const onlySchema = [...facts.paths].filter((p) => !fromTypes.has(p)).sort()
  const onlyTypes = [...fromTypes].filter((p) => !facts.paths.has(p)).sort()
  // FULL is type-checked to carry every ConfigInput field, so a path missing
  // here is missing from types.ts (or, if tsc is red too, from FULL: add it).
  t.strictSame(onlySchema, [], 'in schema.json but not in types.ts ConfigInput / FULL above')
  t.strictSame(onlyTypes, [], 'in types.ts ConfigInput but not in schema.json')
  t.ok(facts.paths.size > 60, `walked ${facts.paths.size} schema paths`)
})

t.test('enums agree', async (t) => {
  const schemaEnums = Object.fromEntries([...facts.enums].map(([k, v]) => [k, v.map(String).sort()]))
  const typeEnums = Object.fromEntries(Object.entries(ENUMS).map(([k, v]) => [k, Object.keys(v).sort()]))
  // Constant `true` (generate/locked) is a value, not an enum of the types.
  for (const k of Object.keys(schemaEnums)) if (schemaEnums[k]!.join() === 'true') delete schemaEnums[k]
  t.strictSame(schemaEnums, typeEnums, 'schema enums vs ENUMS above (each checked by tsc against its union)')
})

t.test('required keys agree', async (t) => {
  const schemaRequired = Object.fromEntries(
    [...facts.required]
      // The password's oneOf branches each require one variant: that is the union, checked above.
      .filter(([k]) => !/(^|\.)(root|password)$/.test(k))
      .map(([k, v]) => [k, [...new Set(v)].sort()]),
  )
  const typeRequired = Object.fromEntries(Object.entries(REQUIRED).map(([k, v]) => [k, Object.keys(v).sort()]))
  t.strictSame(schemaRequired, typeRequired)
})

t.test('the walk would notice a one-sided field', async (t) => {
  // Guard against a walker that sees nothing: a field only in the schema shows up.
  const extra = structuredClone(schema)
  extra.definitions!.registry!.properties!.replicas = { type: 'integer' }
  const f: SchemaFacts = { paths: new Set(), enums: new Map(), required: new Map() }
  const saved = schema.definitions
  schema.definitions = extra.definitions
  try {
    walkSchema(extra, '', f)
  } finally {
    schema.definitions = saved
  }
  t.ok(f.paths.has('registry.replicas'))
  t.notOk(facts.paths.has('registry.replicas'))
})

t.test("registry.images roles: schema, StackRole and the flavors' lock roles are one set", async (t) => {
  const { STACK_ROLES } = await import('../builder/payload/lock.js')
  const ROLES = { quay: true, redis: true, registry: true } satisfies Members<StackRole>
  const inSchema = Object.keys(schema.definitions!.registry!.properties!.images!.properties ?? {}).sort()
  t.strictSame(inSchema, Object.keys(ROLES).sort())
  t.strictSame(Object.values(STACK_ROLES).flat().sort(), Object.keys(ROLES).sort())
})

// The part of Quay's configuration schema this project emits: each key's JSON
// schema type (and enum / pattern / nested fields where the schema has them),
// and the keys the schema requires.
//
// Extracted (by hand-run script, not at build time) from quay/quay
// util/config/schema.py, CONFIG_SCHEMA, at commit
// ffba0c70e2d8d522290a4fbbaa704dbf2fc37f34. When the Quay config template
// gains a key, add the key here from that file; test/registry-quay-config.test.ts
// refuses a key this table does not know.
//
// Keys Quay reads but the schema does not declare (app.py, config.py):
//   SECRET_KEY          app.py: generated at each start when absent, which
//                       would invalidate sessions on every restart
//   DATABASE_SECRET_KEY app.py: Quay refuses to start without it once
//                       SETUP_COMPLETE is true (INTERNAL_ONLY_PROPERTIES)
//   SETUP_COMPLETE      boot.py / data_migration.py: skips the setup flow
export const QUAY_UNDECLARED_KEYS: Record<string, 'string' | 'boolean'> = {
  SECRET_KEY: 'string',
  DATABASE_SECRET_KEY: 'string',
  SETUP_COMPLETE: 'boolean',
}

export interface QuaySchemaNode {
  type: string | string[]
  enum?: string[]
  pattern?: string
  required?: string[]
  properties?: Record<string, QuaySchemaNode>
  items?: QuaySchemaNode
}

export const QUAY_SCHEMA: { required: string[]; properties: Record<string, QuaySchemaNode> } = {
  required: [
    'PREFERRED_URL_SCHEME',
    'SERVER_HOSTNAME',
    'DB_URI',
    'AUTHENTICATION_TYPE',
    'DISTRIBUTED_STORAGE_CONFIG',
    'BUILDLOGS_REDIS',
    'USER_EVENTS_REDIS',
    'DISTRIBUTED_STORAGE_PREFERENCE',
    'DEFAULT_TAG_EXPIRATION',
    'TAG_EXPIRATION_OPTIONS',
  ],
  properties: {
    AUTHENTICATION_TYPE: {
      type: 'string',
      enum: ['Database', 'LDAP', 'JWT', 'Keystone', 'OIDC', 'AppToken'],
    },
    BUILDLOGS_REDIS: {
      type: 'object',
      required: ['host'],
      properties: {
        host: {
          type: 'string',
        },
        port: {
          type: 'number',
        },
        password: {
          type: 'string',
        },
      },
    },
    CREATE_NAMESPACE_ON_PUSH: {
      type: 'boolean',
    },
    DB_URI: {
      type: 'string',
    },
    DEFAULT_TAG_EXPIRATION: {
      type: 'string',
      pattern: '^[0-9]+(w|m|d|h|s)$',
    },
    DISTRIBUTED_STORAGE_CONFIG: {
      type: 'object',
      items: {
        type: 'array',
      },
    },
    DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: {
      type: 'array',
      items: {
        type: 'string',
      },
    },
    DISTRIBUTED_STORAGE_PREFERENCE: {
      type: 'array',
      items: {
        type: 'string',
      },
    },
    EXTERNAL_TLS_TERMINATION: {
      type: 'boolean',
    },
    FEATURE_ANONYMOUS_ACCESS: {
      type: 'boolean',
    },
    FEATURE_BUILD_SUPPORT: {
      type: 'boolean',
    },
    FEATURE_CHANGE_TAG_EXPIRATION: {
      type: 'boolean',
    },
    FEATURE_DIRECT_LOGIN: {
      type: 'boolean',
    },
    FEATURE_MAILING: {
      type: 'boolean',
    },
    FEATURE_PROXY_STORAGE: {
      type: 'boolean',
    },
    FEATURE_REPO_MIRROR: {
      type: 'boolean',
    },
    FEATURE_SECURITY_SCANNER: {
      type: 'boolean',
    },
    FEATURE_USER_CREATION: {
      type: 'boolean',
    },
    FEATURE_USER_INITIALIZE: {
      type: 'boolean',
    },
    LOG_ARCHIVE_LOCATION: {
      type: 'string',
    },
    LOG_ARCHIVE_PATH: {
      type: 'string',
    },
    PREFERRED_URL_SCHEME: {
      type: 'string',
      enum: ['http', 'https'],
    },
    REGISTRY_TITLE: {
      type: 'string',
    },
    REGISTRY_TITLE_SHORT: {
      type: 'string',
    },
    SERVER_HOSTNAME: {
      type: 'string',
    },
    SUPER_USERS: {
      type: 'array',
      items: {
        type: 'string',
      },
    },
    TAG_EXPIRATION_OPTIONS: {
      type: 'array',
      items: {
        type: 'string',
        pattern: '^[0-9]+(w|m|d|h|s)$',
      },
    },
    USERFILES_LOCATION: {
      type: 'string',
    },
    USERFILES_PATH: {
      type: 'string',
    },
    USER_EVENTS_REDIS: {
      type: 'object',
      required: ['host'],
      properties: {
        host: {
          type: 'string',
        },
        port: {
          type: 'number',
        },
        password: {
          type: 'string',
        },
      },
    },
  },
}

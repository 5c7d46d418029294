// Public API of the media stage, for the CLI and the pipeline.
export { buildOemdrv, OEMDRV_LABEL, PAYLOAD_ISO_DIR, type OemdrvOptions, type OemdrvResult } from './oemdrv.js'
export { remasterIso, looksLikeIso, KS_ISO_PATH, type RemasterOptions, type RemasterResult } from './iso.js'
export { buildPxeTree, pxeSnippets, normalizeBaseUrl, type PxeOptions, type PxeResult, type PxeSnippets } from './pxe.js'
export { serveDir, type ServeOptions } from './serve.js'
export { udevEscape, majorFromVolumeId } from './bootcfg.js'
export { sha256File } from '../hash.js'
export type { MediaProgress, OnProgress } from './common.js'

// A free TCP port on 127.0.0.1 for a test server: the product's own
// (builder/media/vm.ts, where `vm` picks its forwarded ports).
export { freePort } from '../../builder/media/vm.js'

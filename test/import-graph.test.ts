// The builder's modules import each other without cycles: a module reached
// from another must not reach back, directly or through others. A cycle ties
// layers together (a command importing the command line's entry, which
// imports the command), makes load order matter, and lets a change anywhere in
// the circle break everything in it. Imports are resolved with TypeScript's
// own module resolution, type-only imports included: they tie the layers as
// much as the others.
import t from 'tap'
import ts from 'typescript'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BUILDER = join(ROOT, 'builder')

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Each builder module and the builder modules it imports (static, dynamic and type-only). */
export function importGraph(files: string[]): Map<string, string[]> {
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, allowJs: true }
  const host = ts.createCompilerHost(options)
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    const deps: string[] = []
    for (const imp of info.importedFiles) {
      const r = ts.resolveModuleName(imp.fileName, file, options, host).resolvedModule
      if (r && !r.isExternalLibraryImport && r.resolvedFileName.startsWith(BUILDER + '/')) deps.push(r.resolvedFileName)
    }
    graph.set(file, deps)
  }
  return graph
}

/** The cycles of a graph: its strongly connected components of more than one node, or with a self-import (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

t.test('the cycle finder finds a cycle, through a dynamic and a type-only import', async (t) => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
    ['e', ['e']],
  ])
  t.same(cycles(g), [['a', 'b', 'c'], ['e']])
  t.same(
    cycles(
      new Map([
        ['a', ['b']],
        ['b', []],
      ]),
    ),
    [],
  )
  // The resolver sees the kinds of import that do not exist at run time or are loaded late.
  const dir = t.testdir({
    'x.ts': "import type { Y } from './y.js'\nexport type X = Y\n",
    'y.ts': "export type Y = number\nexport const load = () => import('./x.js')\n",
  })
  const files = [join(dir, 'x.ts'), join(dir, 'y.ts')]
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext }
  const host = ts.createCompilerHost(options)
  const edges = files.map((f) =>
    ts
      .preProcessFile(readFileSync(f, 'utf8'), true, true)
      .importedFiles.map((i) => ts.resolveModuleName(i.fileName, f, options, host).resolvedModule?.resolvedFileName),
  )
  t.same(edges, [[files[1]], [files[0]]], 'type-only and dynamic imports are both resolved')
})

t.test('builder/ has no import cycle', async (t) => {
  const files = sources(BUILDER)
  const graph = importGraph(files)
  t.ok(files.length > 50, `${files.length} modules read`)
  t.ok([...graph.values()].flat().length > 100, 'their imports were resolved')
  const found = cycles(graph).map((c) => c.map((f) => relative(ROOT, f)))
  t.same(found, [], found.length ? `import cycles:\n${found.map((c) => '  ' + c.join(' ↔ ')).join('\n')}` : 'no cycle')
})

t.test('the ground floor imports nothing of the builder but the logger', async (t) => {
  const file = join(BUILDER, 'context.ts')
  const deps = importGraph([file])
    .get(file)!
    .map((f) => relative(ROOT, f))
  t.same(deps, ['builder/log.ts'])
})

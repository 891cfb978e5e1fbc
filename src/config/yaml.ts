import { LineCounter, parseDocument, visit, type Alias, type Document } from 'yaml';
import { ConfigError } from '../core/errors';

/**
 * The config text as plain data, or a ConfigError naming the place: a YAML syntax error, a recursive alias
 * (`a: &x [*x]` becomes a cyclic object, on which every later step overflowed the stack), or more alias
 * expansions than MAX_ALIAS_COUNT (a "billion laughs" file, which the yaml package refuses by throwing).
 */

/** The yaml package's own default, made explicit: a real config uses a handful of aliases at most. */
const MAX_ALIAS_COUNT = 100;

export function parseYaml(text: string, source: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, lineCounter });
  const yamlError = doc.errors[0];
  if (yamlError) {
    // Later YAML errors are almost always echoes of the first one.
    const position = yamlError.linePos?.[0];
    const where = position ? `line ${position.line}, column ${position.col}` : 'YAML';
    throw new ConfigError([`${source}: ${where}: ${yamlError.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`]);
  }
  const recursive = recursiveAlias(doc);
  if (recursive) {
    const { line, col } = lineCounter.linePos(recursive.range?.[0] ?? 0);
    throw new ConfigError([`${source}: line ${line}, column ${col}: the alias *${recursive.source} is inside the node it refers to (a recursive alias)`]);
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // The yaml package throws a ReferenceError, with no position, for too many alias expansions.
    if (error instanceof ReferenceError) {
      throw new ConfigError([`${source}: YAML: too many aliases (more than ${MAX_ALIAS_COUNT} expansions); write the values out instead`]);
    }
    throw error;
  }
}

/** The first alias that stands inside the very node its anchor names. */
function recursiveAlias(doc: Document): Alias | undefined {
  let found: Alias | undefined;
  visit(doc, {
    Alias(_key, alias, path) {
      const target = alias.resolve(doc);
      if (target && path.includes(target)) {
        found = alias;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

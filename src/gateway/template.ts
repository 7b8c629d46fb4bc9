/**
 * String templates such as "{id}" or "report:{op}", compiled once at load into literal parts and
 * variable indexes, so rendering is a join over an array of values: no parsing per request.
 */
export interface Template {
  readonly text: string;
  /** Literal strings, and numbers indexing the values given to render(). */
  readonly parts: readonly (string | number)[];
  /** The literal value when the template has no variables. */
  readonly constant: string | undefined;
}

/** Compiles `text`; `variables` are the names a placeholder may use. Throws with a readable message. */
export function compileTemplate(text: string, variables: readonly string[]): Template {
  const parts: (string | number)[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{', i);
    const close = text.indexOf('}', i);
    if (close !== -1 && (open === -1 || close < open)) throw new Error(`"${text}": unmatched "}"`);
    if (open === -1) {
      parts.push(text.slice(i));
      break;
    }
    if (open > i) parts.push(text.slice(i, open));
    const end = text.indexOf('}', open);
    if (end === -1) throw new Error(`"${text}": unclosed "{"`);
    const name = text.slice(open + 1, end).trim();
    const index = variables.indexOf(name);
    if (index === -1) {
      throw new Error(`"${text}": unknown placeholder {${name}}${variables.length ? ` (known here: ${variables.map((v) => `{${v}}`).join(', ')})` : ' (none are known here)'}`);
    }
    parts.push(index);
    i = end + 1;
  }
  const constant = parts.every((p) => typeof p === 'string') ? parts.join('') : undefined;
  return { text, parts, constant };
}

export function renderTemplate(t: Template, values: readonly string[]): string {
  if (t.constant !== undefined) return t.constant;
  if (t.parts.length === 1) return values[t.parts[0] as number] ?? '';
  let out = '';
  for (const p of t.parts) out += typeof p === 'string' ? p : (values[p] ?? '');
  return out;
}

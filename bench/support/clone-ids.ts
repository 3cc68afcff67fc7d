/**
 * Ids of the rows the stop scenario copies from its seed: a valid UUID per table
 * (1 contacts, 2 sessions, 3 messages) and index, the same in the bench and in the
 * load generator, which tags contacts by these ids.
 */
export function cloneId(table: 1 | 2 | 3, i: number): string {
  return `00000000-0000-7000-800${table}-${(i + 1).toString(16).padStart(12, '0')}`;
}

import type { SessionId } from '../../core/ids.js';
import { checkTag, mergeTags } from '../shared/tags.js';

/**
 * The session tags of the memory store: tag -> ids and id -> tags, kept by the store as
 * sessions close (any way) and move (rekey), so a lookup costs the sessions found.
 *
 * @example
 * ```ts
 * const tags = new MemoryTags();
 * tags.add(id, ['oidc-sid:3f2a:8c1d']);
 * tags.find('oidc-sid:3f2a:8c1d'); // [id]
 * ```
 */
export class MemoryTags {
  private readonly byTag = new Map<string, Set<SessionId>>();
  private readonly ofSession = new Map<SessionId, Set<string>>();

  /** Attach `tags` to `id` (checked first: a refusal changes nothing). */
  add(id: SessionId, tags: readonly string[]): void {
    const had = this.ofSession.get(id);
    const { fresh } = mergeTags(had ?? [], tags);
    if (fresh.length === 0) return;
    const mine = had ?? new Set<string>();
    if (!had) this.ofSession.set(id, mine);
    for (const tag of fresh) {
      mine.add(tag);
      let ids = this.byTag.get(tag);
      if (!ids) this.byTag.set(tag, (ids = new Set()));
      ids.add(id);
    }
  }

  /** Forget the tags of a session that closed. */
  drop(id: SessionId): void {
    const mine = this.ofSession.get(id);
    if (!mine) return;
    this.ofSession.delete(id);
    for (const tag of mine) {
      const ids = this.byTag.get(tag);
      if (ids?.delete(id) && ids.size === 0) this.byTag.delete(tag);
    }
  }

  /** A session got a new id (rekey): its tags go with it. */
  move(oldId: SessionId, newId: SessionId): void {
    const mine = this.ofSession.get(oldId);
    if (!mine) return;
    this.drop(oldId);
    this.add(newId, [...mine]);
  }

  /** The ids carrying `tag` (the store filters out those past their deadline). */
  find(tag: string): SessionId[] {
    return [...(this.byTag.get(checkTag(tag)) ?? [])];
  }

  /** Tags held, over all sessions (tests: nothing is left behind). */
  get size(): number {
    return this.byTag.size;
  }
}

import type { Serial } from '../core/serial';
import { tokenId } from '../store/account-state';
import type { LoadResult } from '../store/state-store';
import type { AccountContext } from './account-context';
import { stateNotBelievable } from './trust';

/**
 * With a shared store (Redis, several replicas): keeps this replica's state and the shared copy in step. A peer's
 * newer state is taken up (its token goes into this replica's files at once); a shared copy that is missing or
 * older than this replica's (the store lost its data, or this replica's last save did not reach it) is offered
 * this replica's own. With a file store every method does nothing.
 */
export class SharedStateSync {
  constructor(private readonly account: AccountContext) {}

  /** At start: the shared store has no copy (new, or it lost its data), so this replica's token is offered to the others. */
  async offerAtStart(loaded: LoadResult): Promise<void> {
    const { store, kept } = this.account;
    if (store.shared && loaded.localOnly && kept.state.token) await store.offer(kept.state);
  }

  /** A peer's new token is taken up at once, not at this replica's next tick: in turn with the account's other work. */
  follow(serial: Serial): () => void {
    const { store, config } = this.account;
    return store.onChange((account) => {
      if (account === config.name) void serial.run(() => this.refresh());
    });
  }

  async refresh(): Promise<void> {
    const { store, config, bus, ref, kept } = this.account;
    if (!store.shared) return;
    const loaded = await store.load(config.name);
    if (loaded.unavailable) return;
    const remote = loaded.localOnly ? undefined : loaded.state;
    if (!remote || remote.revision < kept.state.revision) {
      if (kept.state.token && (await store.offer(kept.state))) bus.emit('state.offered', { account: ref, revision: kept.state.revision });
      return;
    }
    if (remote.revision === kept.state.revision) return;
    const distrust = stateNotBelievable(remote, config, this.account.clock.now());
    if (distrust) {
      // Said once per revision: the store announces each change once.
      bus.emit('state.error', {
        account: ref,
        reason: 'set_aside',
        message: `the shared state of ${config.name} (revision ${remote.revision}) was set aside: ${distrust}`,
      });
      return;
    }
    const previous = kept.state;
    const sameToken = remote.token?.accessToken === previous.token?.accessToken;
    // What this replica learnt by itself about the same token (its own proofs) stays.
    kept.take({
      ...remote,
      lastProof: previous.lastProof,
      token: remote.token && sameToken && previous.token?.provenAt !== undefined ? { ...remote.token, provenAt: previous.token.provenAt } : remote.token,
    });
    await kept.save('local');
    const token = kept.state.token;
    if (!sameToken && token) {
      bus.emit('token.shared', { account: ref, tokenId: tokenId(token.accessToken), expiresAt: token.expiresAt });
    }
    if (token && (!sameToken || remote.approvalKey?.key !== previous.approvalKey?.key)) await this.account.publish('token');
  }
}

/**
 * The page-record array of one machine, wired to its allocator: which layout a `pageStruct`
 * option names, sizing the array when vm_phys_init has counted the pages, adopting an existing
 * array (a worker's attachment, a restored snapshot), and the `PageStateSource` through which
 * checked reads follow the allocator (its own decoders: the state byte, implicit lazy heads,
 * the segment index). Owns `PhysState.rec`'s replacement; the writers stay in records.ts and are
 * called from pages.ts.
 * @internal
 */
import { SegmentError } from '../errors.js';
import { CTL } from '../layout.js';
import type { Profile } from '../params.js';
import { orderAt, poolAt } from '../queues.js';
import { paOf, segOfIdx } from '../segments.js';
import type { PhysState } from '../state.js';
import { builtinLayout, type Layout } from './layout.js';
import { PageRecords, type PageStateSource, RecordError, type RecordsDescriptor } from './records.js';

/** What a machine keeps per page: FreeBSD's struct vm_page, nothing, or a user's layout. */
export type PageStructOption = 'freebsd' | 'none' | Layout;

/** The layout a `pageStruct` option names for `profile` (LayoutError for an unknown name). */
export function resolvePageStruct(opt: PageStructOption | undefined, profile: Profile): Layout {
  if (opt === undefined) return builtinLayout('none', profile);
  return typeof opt === 'string' ? builtinLayout(opt, profile) : opt;
}

/**
 * The allocator as the record API's source: a page is initialised when its state byte is
 * non-zero (implicit lazy chunk heads read 0 and so read their initial values, order
 * VM_NFREEORDER-1 and pool LAZYINIT, exactly what the allocator decodes for them).
 */
export function allocatorSource(s: PhysState): PageStateSource {
  return {
    isInitialized: (idx) => s.meta[idx] !== 0,
    paOf: (idx) => paOf(s, idx),
    segOfIdx: (idx) => segOfIdx(s, idx),
    poolAt: (idx) => poolAt(s, idx),
    orderAt: (idx) => orderAt(s, idx),
  };
}

/**
 * After vm_phys_init: reserve one record per page in the layout `s.rec` was created with
 * (zero-filled, untouched: RSS grows only as pages are initialised) and connect it to the
 * allocator. Nothing happens for a layout without bytes. A reservation the runtime refuses is
 * a SegmentError ETOOBIG naming the bytes asked for, as for the allocator's own page buffers.
 */
export function sizeRecords(s: PhysState, shared: boolean): void {
  const layout = s.rec.layout;
  if (layout.size === 0) return;
  const pages = s.c.ctl[CTL.TOTAL_PAGES];
  let rec: PageRecords;
  try {
    rec = PageRecords.create(layout, pages, { shared, pageSize: s.pageSize });
  } catch (e) {
    if (e instanceof RecordError) throw e;
    throw new SegmentError(
      'ETOOBIG',
      `cannot reserve ${layout.size * pages} bytes of '${layout.name}' page records: ${(e as Error).message}`,
    );
  }
  rec.setSource(allocatorSource(s));
  s.rec = rec;
}

/** Records over existing buffers (a worker's descriptor, a snapshot), connected to `s`. */
export function adoptRecords(s: PhysState, d: RecordsDescriptor): void {
  const pages = s.c.ctl[CTL.TOTAL_PAGES];
  const layoutHasBytes = d.layout.fields.length > 0 || (d.layout.size ?? 0) > 0;
  if (layoutHasBytes && d.pages !== pages)
    throw new RecordError('ERECORD_ATTACH', `records describe ${d.pages} pages, the machine has ${pages}`);
  const rec = PageRecords.attach(d);
  rec.setSource(allocatorSource(s));
  s.rec = rec;
}

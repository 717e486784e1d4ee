/*
 * The reference FIFO buddy of bench/peers/fifo-buddy.ts, line for line in C, replaying a
 * resolved trace (written by bench/suites/replay.ts): how fast this queue discipline runs as
 * native code on the same machine in the same benchmark run. Owned by the benchmark work.
 *
 * Input file: int32 count, int32 slots, then count bytes of kind, order, flags, and count int32
 * slots (R_ALLOC = 1, | R_LOST = 8: free the slot's old block first; R_FREE = 2; split frees
 * and too-large allocations are skipped: the shared trace has none). Usage: fifo-buddy FILE PAGES REPS. Prints one events/s figure per repetition.
 * Memory comes from calloc (zero pages untouched until written, as a SharedArrayBuffer's).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NORD 13
#define MAXO 12
#define MOVABLE 4

static uint8_t *meta;
static int32_t *lnk;
static int32_t head[2 * NORD], tail_[2 * NORD];

static inline void add(int q, int32_t i, int o, int p) {
  meta[i] = (uint8_t)(0x80 | (p << 4) | o);
  int32_t t = tail_[q];
  if (t < 0) head[q] = i;
  else {
    lnk[2 * (int64_t)t] = i + 1;
    lnk[2 * (int64_t)i + 1] = t + 1;
  }
  tail_[q] = i;
}

static inline void rem(int q, int32_t i, int p) {
  int is_h = head[q] == i, is_t = tail_[q] == i;
  int32_t nx = is_t ? -1 : lnk[2 * (int64_t)i] - 1;
  int32_t pv = is_h ? -1 : lnk[2 * (int64_t)i + 1] - 1;
  if (is_h) head[q] = nx;
  else if (!is_t) lnk[2 * (int64_t)pv] = nx + 1;
  if (is_t) tail_[q] = pv;
  else if (!is_h) lnk[2 * (int64_t)nx + 1] = pv + 1;
  meta[i] = (uint8_t)(0x80 | (p << 4) | NORD);
}

static int32_t balloc(int pool, int o) {
  for (int k = o; k < NORD; k++) {
    int p = pool;
    int32_t m = head[p * NORD + k];
    if (m < 0) {
      p = 1 - pool;
      m = head[p * NORD + k];
      if (m < 0) continue;
    }
    rem(p * NORD + k, m, p);
    while (k > o) {
      k--;
      add(pool * NORD + k, m + (1 << k), k, pool);
    }
    return m;
  }
  return -1;
}

static void bfree(int32_t i, int pool, int o) {
  while (o < MAXO) {
    int32_t b = i ^ (1 << o);
    int bm = meta[b];
    if ((bm & 15) != o || bm == 0) break;
    int bp = (bm >> 4) & 7;
    rem(bp * NORD + o, b, bp);
    o++;
    if (b < i) i = b;
  }
  add(pool * NORD + o, i, o, pool);
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  int32_t hdr[2];
  if (fread(hdr, 4, 2, f) != 2) return 2;
  int n = hdr[0], slots = hdr[1];
  int64_t pages = atoll(argv[2]);
  int reps = atoi(argv[3]);
  pages -= pages % (1 << MAXO);
  uint8_t *kind = malloc(n), *order = malloc(n), *flags = malloc(n);
  int32_t *slot = malloc(4 * (size_t)n);
  if (fread(kind, 1, n, f) != (size_t)n || fread(order, 1, n, f) != (size_t)n || fread(flags, 1, n, f) != (size_t)n ||
      fread(slot, 4, n, f) != (size_t)n)
    return 2;
  fclose(f);
  for (int rep = 0; rep < reps; rep++) {
    meta = calloc((size_t)pages, 1);
    lnk = calloc((size_t)pages * 2, 4);
    int32_t *sv = malloc(8 * (size_t)(slots + 1));
    if (!meta || !lnk || !sv) return 3;
    memset(sv, 0xff, 8 * (size_t)(slots + 1));
    for (int q = 0; q < 2 * NORD; q++) head[q] = tail_[q] = -1;
    for (int64_t i = 0; i < pages; i += 1 << MAXO) add(MAXO, (int32_t)i, MAXO, 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int j = 0; j < n; j++) {
      int k = kind[j];
      if ((k & 7) == 1) {
        int s = slot[j], o = order[j], p = (flags[j] & MOVABLE) ? 0 : 1;
        if ((k & 8) != 0 && sv[2 * s] >= 0) bfree(sv[2 * s], sv[2 * s + 1] >> 4, sv[2 * s + 1] & 15);
        sv[2 * s] = balloc(p, o);
        sv[2 * s + 1] = o | (p << 4);
      } else if (k == 2) {
        int s = slot[j];
        int32_t idx = sv[2 * s];
        if (idx >= 0) {
          int inf = sv[2 * s + 1];
          sv[2 * s] = -1;
          bfree(idx, inf >> 4, inf & 15);
        }
      }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double sec = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%.0f\n", n / sec);
    fflush(stdout);
    free(meta);
    free(lnk);
    free(sv);
  }
  return 0;
}

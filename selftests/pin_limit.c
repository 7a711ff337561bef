// SPDX-License-Identifier: GPL-2.0
/*
 * The pin limit of an order-0 page. A pin adds GUP_PIN_COUNTING_BIAS (1024)
 * to the page's refcount, a signed 32-bit atomic_t on every arch, and GUP
 * refuses a pin once the count would have gone negative (try_grab_folio /
 * try_grab_page: WARN_ON_ONCE(folio_ref_count(folio) <= 0) -> -ENOMEM;
 * GUP-fast: try_get_folio). From a base refcount r, exactly
 * (2^31 - 1 - r) / 1024 + 1 pins succeed (2^21 for r < 1024) and the next is
 * refused, with at most the kernel's one-time warning.
 *
 * The pins are io_uring fixed buffers (io_sqe_buffers_register ->
 * pin_user_pages, FOLL_LONGTERM), which every version and arch has. Each
 * buffer spans SPAN pages of a range in which every page maps the same memfd
 * page, so one buffer pins that page SPAN times for 16 bytes of bio_vec a pin
 * (a buffer per pin costs the kernel about a kilobyte in 7.x: 2 GB). The
 * page's refcount then starts at 1 + SPAN (a reference per mapping). Whole
 * rings of one such buffer until one is refused, then the largest buffer the
 * kernel still grants (found by registering and unregistering), then one page
 * more, which must be refused. Once the rings are closed, every pin must be
 * back (the vmstat counters), the page's refcount where it began (dump_page,
 * read back from /dev/kmsg) and the page pinnable again (where no dump
 * serves: 5.10's unpin skips a page whose count is negative under DEBUG_VM).
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <sys/ioctl.h>

#include "workload.h"
#if __has_include("gup_test.h")
#include "gup_test.h" /* the tree's own, -iquote <tree>/mm: its ioctl numbers and layout */
#endif

#define SPAN 8192 /* pages a buffer spans: below the default vm.max_map_count of 65530 mappings */
#define PIN_BIAS 1024
#define MAX_RINGS ((1LL << 31) / PIN_BIAS / SPAN + 2)

/* The page's refcount from dump_page (with gup_test's own reference), or -1 with why not. */
static long dumped_refcount(char *page, const char **why)
{
#ifdef DUMP_USER_PAGES_TEST
	struct gup_test dump = { .addr = (uintptr_t)page, .size = page_size(), .nr_pages_per_call = 1,
				 .which_pages = { 1 } };
	char record[1024], *field;
	long refcount = -1;
	int gup_test = open("/sys/kernel/debug/gup_test", O_RDWR);
	int kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	ssize_t length;

	if (gup_test < 0 || kmsg < 0) {
		*why = gup_test < 0 ? "no /sys/kernel/debug/gup_test" : "no /dev/kmsg";
		return -1;
	}
	lseek(kmsg, 0, SEEK_END);
	if (ioctl(gup_test, DUMP_USER_PAGES_TEST, &dump)) {
		*why = "gup_test's dump failed";
		return -1;
	}
	while ((length = read(kmsg, record, sizeof(record) - 1)) > 0) {
		record[length] = 0;
		if ((field = strstr(record, " refcount:")))
			refcount = strtol(field + strlen(" refcount:"), NULL, 10);
	}
	close(kmsg);
	close(gup_test);
	if (refcount < 0)
		*why = "no refcount in the dump";
	return refcount;
#else
	(void)page;
	*why = "this tree has no gup_test dump (gup_benchmark before 5.11)";
	return -1;
#endif
}

/*
 * A new page waits in a per-CPU batch, which holds a reference, until the
 * batch fills and goes to the LRU: fill it with fresh pages, on the CPU
 * that faulted the page in, so that the base refcount is settled.
 */
static void settle_lru_batch(void)
{
	size_t size = 64 * page_size();
	char *fresh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	madvise(fresh, size, MADV_NOHUGEPAGE);
	memset(fresh, 1, size);
	munmap(fresh, size);
}

/* A ring with one buffer of `pages` pages at `range`: 0, or -errno (the ring then closed). */
static int pin(struct io_uring *ring, char *range, size_t pages)
{
	struct iovec buffer = { range, pages * page_size() };
	int error = io_uring_queue_init(1, ring, 0);

	if (error)
		return error;
	error = io_uring_register_buffers(ring, &buffer, 1);
	if (error)
		io_uring_queue_exit(ring);
	return error;
}

int main(void)
{
	static struct io_uring rings[MAX_RINGS + 2];
	const char *why = NULL, *after_why = NULL;
	size_t page = page_size();
	int memfd = memfd_create("pin_limit", 0), used = 0, error = 0, intact = 1, refused;
	char *range = mmap(NULL, SPAN * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long pinned = 0, refcount_before, refcount_after, held, allowed = -1;
	struct pin_counters before;

	cpu_set_t first_cpu;

	/* One CPU throughout: its LRU batch is the one the page went into. */
	CPU_ZERO(&first_cpu);
	CPU_SET(0, &first_cpu);
	sched_setaffinity(0, sizeof(first_cpu), &first_cpu);
	ktap_plan(6);
	ftruncate(memfd, page);
	for (size_t i = 0; i < SPAN; i++)
		if (mmap(range + i * page, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd, 0) == MAP_FAILED)
			return ktap_diag("mapping page %zu of the range: %s", i, strerror(errno)), 1;
	memset(range, 0x3c, page);
	for (size_t i = 0; i < SPAN; i++)
		(void)*(volatile char *)(range + i * page); /* every mapping present */
	settle_lru_batch();
	refcount_before = dumped_refcount(range, &why);
	if (refcount_before >= 0) {
		ktap_diag("figure refcount_before=%ld", refcount_before);
		allowed = (2147483647L - (refcount_before - 1)) / PIN_BIAS + 1;
	}
	before = pin_counters();
	while (used < MAX_RINGS && !(error = pin(&rings[used], range, SPAN))) {
		used++;
		pinned += SPAN;
	}
	if (error && error != -ENOSYS && error != -EPERM) {
		/*
		 * A buffer the limit cuts short fails as a whole (-EFAULT from a partial pin, -ENOMEM from none).
		 * The largest buffer still granted: a k-page buffer is granted while k pins remain.
		 */
		size_t low = 0, high = SPAN - 1;

		while (low < high) {
			size_t middle = (low + high + 1) / 2;
			struct io_uring probe;

			if (pin(&probe, range, middle) == 0) {
				io_uring_queue_exit(&probe);
				pins_settle(before, pinned, 60); /* the probe's pins are let go in a worker */
				low = middle;
			} else {
				high = middle - 1;
			}
		}
		if (low && !pin(&rings[used], range, low)) {
			used++;
			pinned += low;
		}
		refused = pin(&rings[used], range, 1);
		if (!refused)
			used++, pinned++;
	} else {
		refused = error;
	}
	ktap_diag("figure pins_succeeded=%ld", pinned);
	ktap_diag("the next pin: %s", refused ? strerror(-refused) : "granted");
	if (error == -ENOSYS || error == -EPERM) {
		char reason[128];

		snprintf(reason, sizeof(reason), "io_uring: %s", strerror(-error));
		ktap_skip(reason, "exactly the pins of one page the bias allows succeed");
		ktap_skip(reason, "the next pin is refused with ENOMEM");
	} else {
		if (allowed < 0)
			ktap_skip(why, "exactly the pins of one page the bias allows succeed");
		else
			ktap_result(pinned == allowed, "exactly the pins of one page the bias allows succeed");
		ktap_result(refused == -ENOMEM, "the next pin is refused with ENOMEM");
	}
	for (size_t i = 0; i < page; i++)
		intact &= range[i] == 0x3c;
	ktap_result(intact, "the page's data is intact");
	for (int i = 0; i < used; i++)
		io_uring_queue_exit(&rings[i]);
	held = pins_back_since(before, 120);
	if (held)
		ktap_diag("%ld pins still held after the rings were closed", held);
	ktap_result(held == 0, "every pin is given back once the rings are closed");
	/* A refcount left wrong (negative: later pins refused) shows where no dump can: the page pins again. */
	error = pin(&rings[0], range, 1);
	if (error)
		ktap_diag("pinning the page again: %s", strerror(-error));
	else
		io_uring_queue_exit(&rings[0]);
	ktap_result(!error, "the page can be pinned again");
	pins_back_since(before, 60);
	/* A long-term pin may have migrated the page out of ZONE_MOVABLE: the new page waits in a batch too. */
	settle_lru_batch();
	refcount_after = dumped_refcount(range, &after_why);
	if (refcount_after >= 0)
		ktap_diag("figure refcount_after=%ld", refcount_after);
	if (refcount_before < 0 || refcount_after < 0)
		ktap_skip(why ? why : after_why, "the page's refcount is back where it began");
	else
		ktap_result(refcount_after == refcount_before, "the page's refcount is back where it began");
	return ktap_exit();
}

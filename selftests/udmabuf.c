// SPDX-License-Identifier: GPL-2.0
/*
 * udmabuf: a dma-buf made of a memfd's folios (UDMABUF_CREATE). From 6.11
 * udmabuf_create pins them with memfd_pin_folios(), which allocates the
 * folios of a range nobody has written yet and must pin the very folios the
 * process maps later; before, it takes references (shmem_read_mapping_page,
 * find_get_page_flags for hugetlb). Closing the buffer lets them go
 * (unpin_folio). Run with "shmem" or "hugetlb": memory never written, memory
 * the process wrote, an offset inside a huge page, writes after creation,
 * creation while another thread faults the same range; the contents read
 * through the dma-buf's own mapping.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <linux/udmabuf.h>
#include <pthread.h>
#include <sys/ioctl.h>

#include "workload.h"

enum { NEVER_WRITTEN, WRITES_AFTER, WRITTEN, AT_AN_OFFSET, CONCURRENT_FAULTS, PINS_BACK, CASES };
static const char *const case_names[CASES] = {
	"memory never written reads as zeros through the dma-buf",
	"the process's writes after creation show through the dma-buf",
	"memory the process wrote shows through the dma-buf",
	"a dma-buf from one page into a folio, across the next",
	"dma-bufs created while a thread faults the range in hold the process's data",
	"closing the dma-bufs and the memfd gives back every pin",
};

static int device = -1;
static const char *failed_call; /* which call of udmabuf() failed last */

struct memfd {
	int fd;
	char *map;
	size_t size, folio;
};

static const char *make_memfd(int hugetlb, struct memfd *memfd)
{
	memfd->folio = hugetlb ? hugetlb_size() : page_size();
	memfd->size = 2 * (hugetlb ? memfd->folio : 4 * page_size());
	memfd->fd = memfd_create("udmabuf", MFD_ALLOW_SEALING | (hugetlb ? MFD_HUGETLB : 0));
	if (memfd->fd < 0)
		return hugetlb ? "no hugetlb memfd" : "no memfd";
	if (ftruncate(memfd->fd, memfd->size) || fcntl(memfd->fd, F_ADD_SEALS, F_SEAL_SHRINK))
		return "the memfd could not be sized and sealed";
	memfd->map = mmap(NULL, memfd->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd->fd, 0);
	return memfd->map == MAP_FAILED ? (hugetlb ? "no free huge pages" : "mmap of the memfd failed") : NULL;
}

/* A dma-buf of [offset, offset + size) of the memfd, mapped; NULL with errno on failure. */
static char *udmabuf(struct memfd *memfd, size_t offset, size_t size, int *buffer)
{
	struct udmabuf_create create = { .memfd = memfd->fd, .flags = UDMABUF_FLAGS_CLOEXEC, .offset = offset,
					  .size = size };
	char *map;

	*buffer = ioctl(device, UDMABUF_CREATE, &create);
	if (*buffer < 0) {
		failed_call = "UDMABUF_CREATE";
		return NULL;
	}
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, *buffer, 0);
	if (map == MAP_FAILED) {
		failed_call = "mmap of the dma-buf";
		close(*buffer);
		return NULL;
	}
	return map;
}

static void release(char *map, size_t size, int buffer)
{
	munmap(map, size);
	close(buffer);
}

/* What the dma-buf shows of the memfd at offset is the process's view of it. */
static int same(struct memfd *memfd, size_t offset, size_t size, const char *what)
{
	int buffer, ok;
	char *map = udmabuf(memfd, offset, size, &buffer);

	if (!map)
		return ktap_diag("%s: %s: %s", what, failed_call, strerror(errno)), 0;
	ok = !memcmp(map, memfd->map + offset, size);
	if (!ok)
		ktap_diag("%s: the dma-buf shows other data than the memfd holds", what);
	release(map, size, buffer);
	return ok;
}

static void unpopulate(struct memfd *memfd)
{
	munmap(memfd->map, memfd->size);
	fallocate(memfd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, memfd->size);
	memfd->map = mmap(NULL, memfd->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd->fd, 0);
}

/*
 * How much of hugetlb this kernel's udmabuf takes: all of it (6.11 and later:
 * memfd_pin_folios allocates what nobody has faulted in, from free huge pages
 * outside highmem and ZONE_MOVABLE only), only memory already faulted in
 * (find_get_page_flags before), or none (before 5.15, and stable trees that
 * took the 2023 revert: -EBADFD). Returns why the cases on memory nobody has
 * written are skipped, or NULL; sets *none to why every case is.
 */
static const char *hugetlb_support(struct memfd *memfd, const char **none)
{
	static char why[128];
	int buffer;
	char *map = udmabuf(memfd, 0, memfd->size, &buffer);

	if (map) {
		release(map, memfd->size, buffer);
		return NULL;
	}
	if (errno == ENOMEM) {
		unpopulate(memfd);
		return "no free huge page outside highmem and ZONE_MOVABLE, the only ones udmabuf takes for memory "
		       "nobody has faulted in (ENOMEM)";
	}
	memset(memfd->map, 0, memfd->size);
	map = udmabuf(memfd, 0, memfd->size, &buffer);
	if (!map) {
		snprintf(why, sizeof(why), "this kernel's udmabuf takes no hugetlb memfd (%s)", strerror(errno));
		*none = why;
		return why;
	}
	release(map, memfd->size, buffer);
	unpopulate(memfd);
	return "this kernel's udmabuf takes only hugetlb memory already faulted in (memfd_pin_folios came in 6.11)";
}

struct faulting {
	struct memfd *memfd;
	volatile int started;
};

static void *fault_in(void *argument)
{
	struct faulting *faulting = argument;

	faulting->started = 1;
	for (size_t i = 0; i < faulting->memfd->size; i += 64)
		faulting->memfd->map[i] = (char)(i / 64 + 3);
	return NULL;
}

static void cases(int hugetlb, const char *name)
{
	struct pin_counters before = pin_counters();
	struct memfd memfd;
	const char *why = device < 0 ? "no /dev/udmabuf (CONFIG_UDMABUF)" : make_memfd(hugetlb, &memfd);
	int buffer, ok;
	char *map;

	const char *unpopulated = why ? why : hugetlb ? hugetlb_support(&memfd, &why) : NULL;

	if (why) {
		for (int i = 0; i < CASES; i++)
			ktap_skip(why, "%s: %s", name, case_names[i]);
		return;
	}
	if (unpopulated) {
		ktap_skip(unpopulated, "%s: %s", name, case_names[NEVER_WRITTEN]);
		ktap_skip(unpopulated, "%s: %s", name, case_names[WRITES_AFTER]);
	} else {
		map = udmabuf(&memfd, 0, memfd.size, &buffer);
		ok = map != NULL;
		for (size_t i = 0; ok && i < memfd.size; i++)
			ok = map[i] == 0;
		if (!map)
			ktap_diag("%s: %s", failed_call, strerror(errno));
		ktap_result(ok, "%s: %s", name, case_names[NEVER_WRITTEN]);

		/* The same folios, written by the process after the dma-buf took them. */
		memset(memfd.map, 0x6b, memfd.size);
		ok = map && !memcmp(map, memfd.map, memfd.size);
		ktap_result(ok, "%s: %s", name, case_names[WRITES_AFTER]);
		if (map)
			release(map, memfd.size, buffer);
	}

	for (size_t i = 0; i < memfd.size; i++)
		memfd.map[i] = (char)(i * 5 + i / 4093);
	ktap_result(same(&memfd, 0, memfd.size, "written"), "%s: %s", name, case_names[WRITTEN]);
	ktap_result(same(&memfd, page_size(), memfd.folio > page_size() ? memfd.folio : 2 * page_size(),
			 "at an offset"),
		    "%s: %s", name, case_names[AT_AN_OFFSET]);

	if (unpopulated) {
		ktap_skip(unpopulated, "%s: %s", name, case_names[CONCURRENT_FAULTS]);
	} else {
		/* Punch the memory out, then create dma-bufs while a thread faults it back in. */
		unpopulate(&memfd);
		struct faulting faulting = { &memfd, 0 };
		pthread_t thread;
		int created = 0;

		pthread_create(&thread, NULL, fault_in, &faulting);
		while (!faulting.started)
			;
		int failed_with = 0;

		for (int i = 0; i < 20; i++) {
			map = udmabuf(&memfd, 0, memfd.size, &buffer);
			if (map) {
				created++;
				release(map, memfd.size, buffer);
			} else if (!failed_with || failed_with == ENOMEM) {
				failed_with = errno;
			}
		}
		pthread_join(thread, NULL);
		if (created < 20)
			ktap_diag("%d of 20 dma-bufs created while the range faulted in; a failure: %s: %s", created,
				  failed_call, strerror(failed_with));
		/*
		 * For hugetlb memory nobody has faulted in yet, udmabuf takes only a free huge page outside highmem
		 * and ZONE_MOVABLE (memfd_alloc_folio): ENOMEM is its answer when the thread has taken those.
		 */
		ok = created > 0 && (!failed_with || failed_with == ENOMEM) &&
		     same(&memfd, 0, memfd.size, "after concurrent faults");
		ktap_result(ok, "%s: %s", name, case_names[CONCURRENT_FAULTS]);
	}

	munmap(memfd.map, memfd.size);
	close(memfd.fd);
	long held = pins_back_since(before, 10);
	if (held)
		ktap_diag("%ld pins still held", held);
	ktap_result(held == 0, "%s: %s", name, case_names[PINS_BACK]);
}

int main(int argc, char **argv)
{
	int hugetlb = argc > 1 && !strcmp(argv[1], "hugetlb");

	if (argc != 2 || (!hugetlb && strcmp(argv[1], "shmem"))) {
		fprintf(stderr, "usage: udmabuf shmem|hugetlb\n");
		return 2;
	}
	ktap_plan(CASES);
	device = open("/dev/udmabuf", O_RDWR);
	cases(hugetlb, argv[1]);
	return ktap_exit();
}

// SPDX-License-Identifier: GPL-2.0
/*
 * O_DIRECT between user memory and a block device: the block layer takes the
 * buffer's pages for the bio (bio_iov_iter_get_pages -> iov_iter_extract_pages
 * -> pin_user_pages_fast from 6.3, get_user_pages_fast before) and lets them
 * go at completion (bio_release_pages -> unpin_user_page, or put_page). On
 * base pages, THP and hugetlb: a page-aligned folio, 512 bytes into a large
 * folio (the logical block size, not a page boundary), and a range across two
 * folios; to a RAM block device (brd's /dev/ram1) and to a file on ext4
 * (iomap_dio_rw). The data must arrive and come back; the memory and huge
 * pages must be free again once the process is gone (gupvm checks those).
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>

#include "workload.h"

#define TARGETS 2
static const char *const target_paths[TARGETS] = { "/dev/ram1", "/mnt/ext4/o_direct.data" };
static const char *const target_names[TARGETS] = { "RAM disk", "ext4 file" };

/* Write the buffer with O_DIRECT, wipe it, read it back with O_DIRECT, and read the file without it. */
static int round_trip(int direct, int buffered, char *buffer, size_t size, unsigned int seed)
{
	char *check = malloc(size);
	ssize_t done;
	int ok = 0;

	fill_pattern(buffer, size, seed);
	done = pwrite(direct, buffer, size, 0);
	if (done != (ssize_t)size) {
		ktap_diag("O_DIRECT write: %s", done < 0 ? strerror(errno) : "short");
	} else {
		memset(buffer, 0, size);
		done = pread(direct, buffer, size, 0);
		if (done != (ssize_t)size)
			ktap_diag("O_DIRECT read: %s", done < 0 ? strerror(errno) : "short");
		else if (!holds_pattern(buffer, size, seed))
			ktap_diag("O_DIRECT read other data than was written");
		else if (pread(buffered, check, size, 0) != (ssize_t)size || !holds_pattern(check, size, seed))
			ktap_diag("a buffered read sees other data than O_DIRECT wrote");
		else
			ok = 1;
	}
	free(check);
	return ok;
}

int main(void)
{
	ktap_plan(TARGETS * 3 * 3);
	for (int target = 0; target < TARGETS; target++) {
		int direct = open(target_paths[target], O_RDWR | O_CREAT | O_DIRECT, 0600);
		int buffered = open(target_paths[target], O_RDONLY);
		char why[160];

		snprintf(why, sizeof(why), "%s: %s", target_paths[target], strerror(errno));
		for (enum memory_kind kind = BASE_PAGES; kind <= HUGETLB; kind++) {
			const char *name = memory_kind_names[kind];
			struct region region;
			const char *no_memory = direct < 0 || buffered < 0 ? why : map_region(kind, 2, &region);
			size_t page = page_size();

			if (no_memory) {
				ktap_skip(no_memory, "%s, %s: a whole folio, page-aligned", target_names[target], name);
				ktap_skip(no_memory, "%s, %s: 512 bytes into a folio", target_names[target], name);
				ktap_skip(no_memory, "%s, %s: across two folios", target_names[target], name);
				continue;
			}
			ktap_result(round_trip(direct, buffered, region.addr, region.folio_size, 1),
				    "%s, %s: a whole folio, page-aligned", target_names[target], name);
			ktap_result(round_trip(direct, buffered, region.addr + 512, 2 * page, 2),
				    "%s, %s: 512 bytes into a folio", target_names[target], name);
			ktap_result(round_trip(direct, buffered, region.addr + region.folio_size - page, 2 * page, 3),
				    "%s, %s: across two folios", target_names[target], name);
			unmap_region(&region);
		}
		if (direct >= 0)
			close(direct);
		if (buffered >= 0)
			close(buffered);
	}
	unlink(target_paths[1]);
	return ktap_exit();
}

// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring fixed buffers: IORING_REGISTER_BUFFERS pins user memory long-term
 * (io_sqe_buffers_register -> pin_user_pages / io_pin_pages, FOLL_LONGTERM),
 * IORING_OP_{READ,WRITE}_FIXED do I/O through those pins without GUP, and
 * unregistering unpins (io_buffer_unmap -> unpin_user_page(s)). On base
 * pages, THP and hugetlb: buffers at a folio's head, inside a folio and
 * across a folio boundary; across fork (the pinned pages stay the parent's:
 * copy_present_page copies them for the child); and a registration that
 * fails part-way (an inaccessible buffer among good ones), which must leave
 * nothing pinned.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <liburing.h>
#include <sys/wait.h>

#include "workload.h"

#define BUFFERS 3

static int scratch_file = -1;

/* One READ_FIXED or WRITE_FIXED of a whole registered buffer, at offset 0 of the scratch file. */
static int fixed_io(struct io_uring *ring, int write, struct iovec *buffer, int index)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int result;

	if (write)
		io_uring_prep_write_fixed(sqe, scratch_file, buffer->iov_base, buffer->iov_len, 0, index);
	else
		io_uring_prep_read_fixed(sqe, scratch_file, buffer->iov_base, buffer->iov_len, 0, index);
	if (io_uring_submit(ring) != 1 || io_uring_wait_cqe(ring, &cqe))
		return -EIO;
	result = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return result == (int)buffer->iov_len ? 0 : result < 0 ? result : -EIO;
}

/* Data written through the pins reaches the file; data read through them lands in the process's memory. */
static int round_trip(struct io_uring *ring, struct iovec *buffer, int index, unsigned int seed)
{
	char *check = malloc(buffer->iov_len);
	int error, ok = 0;

	fill_pattern(buffer->iov_base, buffer->iov_len, seed);
	error = fixed_io(ring, 1, buffer, index);
	if (error)
		ktap_diag("WRITE_FIXED: %s", strerror(-error));
	else if (pread(scratch_file, check, buffer->iov_len, 0) != (ssize_t)buffer->iov_len ||
		 !holds_pattern(check, buffer->iov_len, seed))
		ktap_diag("WRITE_FIXED wrote other data than the buffer holds");
	else {
		fill_pattern(check, buffer->iov_len, seed + 1);
		pwrite(scratch_file, check, buffer->iov_len, 0);
		error = fixed_io(ring, 0, buffer, index);
		if (error)
			ktap_diag("READ_FIXED: %s", strerror(-error));
		else if (!holds_pattern(buffer->iov_base, buffer->iov_len, seed + 1))
			ktap_diag("READ_FIXED's data is not in the process's memory");
		else
			ok = 1;
	}
	free(check);
	return ok;
}

/*
 * After fork, the child writes its copy of the buffers and exits, the parent
 * writes its own: a write through the pins must carry the parent's data.
 */
static int pins_stay_with_the_parent(struct io_uring *ring, struct iovec *buffers)
{
	pid_t child;
	int status, ok = 1;

	for (int i = 0; i < BUFFERS; i++)
		fill_pattern(buffers[i].iov_base, buffers[i].iov_len, 10 + i);
	child = fork();
	if (child == 0) {
		for (int i = 0; i < BUFFERS; i++)
			memset(buffers[i].iov_base, 0xcc, buffers[i].iov_len);
		_exit(0);
	}
	waitpid(child, &status, 0);
	for (int i = 0; i < BUFFERS && ok; i++) {
		char *check = malloc(buffers[i].iov_len);

		fill_pattern(buffers[i].iov_base, buffers[i].iov_len, 20 + i);
		if (fixed_io(ring, 1, &buffers[i], i) ||
		    pread(scratch_file, check, buffers[i].iov_len, 0) != (ssize_t)buffers[i].iov_len)
			ok = 0, ktap_diag("buffer %d: I/O after fork failed", i);
		else if (!holds_pattern(check, buffers[i].iov_len, 20 + i))
			ok = 0, ktap_diag("buffer %d: the pins write %s, not the parent's data", i,
					  check[0] == (char)0xcc ? "the child's data" : "stale data");
		free(check);
	}
	return ok;
}

/* unavailable: why io_uring cannot be used at all, or NULL. */
static void each_kind(enum memory_kind kind, const char *unavailable)
{
	const char *name = memory_kind_names[kind];
	struct region region;
	const char *why = unavailable ? unavailable : map_region(kind, 2, &region);
	struct io_uring ring;
	struct iovec buffers[BUFFERS];
	struct pin_counters before;
	int error;

	if (why) {
		ktap_skip(why, "%s: registering buffers at a folio's head, inside it and across folios pins them", name);
		for (int i = 0; i < BUFFERS; i++)
			ktap_skip(why, "%s: buffer %d reads and writes through its pins", name, i);
		ktap_skip(why, "%s: after fork, the pins write the parent's data", name);
		ktap_skip(why, "%s: unregistering gives back every pin", name);
		return;
	}
	/* A folio's head; inside a folio (a page and 512 bytes in, or 512 bytes into a base page); across the boundary. */
	size_t inside = region.folio_size > page_size() ? page_size() + 512 : 512;
	buffers[0] = (struct iovec){ region.addr, region.folio_size };
	buffers[1] = (struct iovec){ region.addr + inside, 1024 };
	buffers[2] = (struct iovec){ region.addr + region.folio_size - 2048, 4096 };

	io_uring_queue_init(4, &ring, 0);
	before = pin_counters();
	error = io_uring_register_buffers(&ring, buffers, BUFFERS);
	long held = pins_held_since(before);
	if (error)
		ktap_diag("io_uring_register_buffers: %s", strerror(-error));
	else
		ktap_diag("%ld pins held while registered", held);
	ktap_result(!error && held > 0,
		    "%s: registering buffers at a folio's head, inside it and across folios pins them", name);
	for (int i = 0; i < BUFFERS; i++)
		ktap_result(!error && round_trip(&ring, &buffers[i], i, i + 1),
			    "%s: buffer %d reads and writes through its pins", name, i);
	ktap_result(!error && pins_stay_with_the_parent(&ring, buffers),
		    "%s: after fork, the pins write the parent's data", name);
	if (!error)
		error = io_uring_unregister_buffers(&ring);
	held = pins_back_since(before, 10);
	if (held)
		ktap_diag("%ld pins still held after unregistering", held);
	ktap_result(!error && held == 0, "%s: unregistering gives back every pin", name);
	io_uring_queue_exit(&ring);
	unmap_region(&region);
}

/* Good buffers around one that cannot be pinned (PROT_NONE): the registration fails and takes back what it pinned. */
static void failing_part_way(const char *unavailable)
{
	struct io_uring ring;
	struct iovec buffers[4];
	struct pin_counters before;
	char *memory = mmap(NULL, 4 * page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int error;

	if (unavailable) {
		ktap_skip(unavailable, "a registration with an inaccessible buffer among good ones fails and holds no pin");
		return;
	}
	memset(memory, 1, 4 * page_size());
	/* Inaccessible rather than unmapped: nothing the ring maps can land in the hole. */
	mprotect(memory + 2 * page_size(), page_size(), PROT_NONE);
	for (int i = 0; i < 4; i++)
		buffers[i] = (struct iovec){ memory + i * page_size(), page_size() };
	io_uring_queue_init(4, &ring, 0);
	before = pin_counters();
	error = io_uring_register_buffers(&ring, buffers, 4);
	long held = pins_back_since(before, 10);
	ktap_diag("registration: %s; %ld pins held after it", error ? strerror(-error) : "succeeded", held);
	ktap_result(error && held == 0, "a registration with an inaccessible buffer among good ones fails and holds no pin");
	io_uring_queue_exit(&ring);
}

int main(void)
{
	struct io_uring probe;
	char path[] = "/tmp/io_uring_fixed.XXXXXX", why[128];
	const char *unavailable = NULL;
	int error;

	ktap_plan(3 * (BUFFERS + 3) + 1);
	scratch_file = mkstemp(path);
	unlink(path);
	error = io_uring_queue_init(1, &probe, 0);
	if (error) {
		/* ENOSYS: no CONFIG_IO_URING; EPERM: kernel.io_uring_disabled. */
		snprintf(why, sizeof(why), "io_uring_setup: %s", strerror(-error));
		unavailable = why;
	} else {
		io_uring_queue_exit(&probe);
	}
	for (enum memory_kind kind = BASE_PAGES; kind <= HUGETLB; kind++)
		each_kind(kind, unavailable);
	failing_part_way(unavailable);
	return ktap_exit();
}

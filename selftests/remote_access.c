// SPDX-License-Identifier: GPL-2.0
/*
 * Another process's memory through GUP: /proc/PID/mem (mem_rw ->
 * access_remote_vm -> get_user_pages_remote, FOLL_FORCE), process_vm_readv
 * and process_vm_writev (process_vm_rw_pages -> pin_user_pages_remote, then
 * unpin_user_pages_dirty_lock), and PTRACE_PEEKDATA/POKEDATA
 * (ptrace_access_vm -> get_user_pages_remote). On a child's base pages, THP
 * and hugetlb: the first byte of a mapping, unaligned bytes, bytes across a
 * page and across a folio boundary, the last byte. And on secretmem
 * (memfd_secret), which every one of those paths must refuse
 * (check_vma_flags: vma_is_secretmem).
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "workload.h"

enum method { MEM_READ, MEM_WRITE, VM_READV, VM_WRITEV, PEEKDATA, POKEDATA, METHODS };
static const char *const method_names[] = {
	"/proc/PID/mem read", "/proc/PID/mem write", "process_vm_readv", "process_vm_writev", "PTRACE_PEEKDATA",
	"PTRACE_POKEDATA",
};

static pid_t child;
static int child_mem = -1;
static const char *no_cross_memory_attach;

static char expected_byte(size_t offset, unsigned int generation)
{
	return (char)(offset * 13 + generation * 101 + offset / 4091);
}

/* Read or write `size` bytes of the child at `address` by one method; the number of bytes done, or -errno. */
static long remote(enum method method, char *address, char *local, size_t size)
{
	struct iovec here = { local, size }, there = { address, size };
	long done = 0;

	switch (method) {
	case MEM_READ:
		done = pread(child_mem, local, size, (off_t)(uintptr_t)address);
		break;
	case MEM_WRITE:
		done = pwrite(child_mem, local, size, (off_t)(uintptr_t)address);
		break;
	case VM_READV:
		done = process_vm_readv(child, &here, 1, &there, 1, 0);
		break;
	case VM_WRITEV:
		done = process_vm_writev(child, &here, 1, &there, 1, 0);
		break;
	case PEEKDATA:
	case POKEDATA:
		/* A word at a time, so that a range ends exactly where asked: the last word overlaps the one before. */
		for (size_t at = 0; at < size; at += sizeof(long)) {
			size_t offset = at + sizeof(long) > size ? size - sizeof(long) : at;
			long word;

			errno = 0;
			if (method == PEEKDATA) {
				word = ptrace(PTRACE_PEEKDATA, child, address + offset, NULL);
				if (errno)
					return -errno;
				memcpy(local + offset, &word, sizeof(long));
			} else {
				memcpy(&word, local + offset, sizeof(long));
				if (ptrace(PTRACE_POKEDATA, child, address + offset, (void *)word))
					return -errno;
			}
		}
		return size;
	default:
		break;
	}
	return done < 0 ? -errno : done;
}

/* [offset, offset + size) of a region: where GUP splits or aligns its work. */
struct range {
	const char *name;
	size_t offset, size;
};

static int ranges_of(const struct region *region, struct range *ranges)
{
	size_t page = page_size(), folio = region->folio_size, last = region->size;
	int count = 0;

	ranges[count++] = (struct range){ "the first bytes", 0, sizeof(long) };
	ranges[count++] = (struct range){ "unaligned bytes", 1, 3 * sizeof(long) + 1 };
	ranges[count++] = (struct range){ "bytes across a page boundary", page - 5, 11 };
	if (folio > page)
		ranges[count++] = (struct range){ "bytes across a folio boundary", folio - 9, 19 };
	ranges[count++] = (struct range){ "the last bytes", last - sizeof(long), sizeof(long) };
	return count;
}

/*
 * One method over every range of one region: reads see what the child wrote,
 * writes land in the child (read back through /proc/PID/mem, then the
 * child's bytes put back).
 */
static int each_range(enum method method, const struct region *region)
{
	int write = method == MEM_WRITE || method == VM_WRITEV || method == POKEDATA;
	struct range ranges[5];
	int count = ranges_of(region, ranges), ok = 1;

	for (int i = 0; i < count && ok; i++) {
		const struct range *range = &ranges[i];
		char *address = region->addr + range->offset;
		char local[64], back[64], original[64];
		long done;

		for (size_t j = 0; j < range->size; j++) {
			original[j] = expected_byte(range->offset + j, 0);
			local[j] = write ? expected_byte(range->offset + j, 1) : 0;
		}
		done = remote(method, address, local, range->size);
		if (done != (long)range->size) {
			ktap_diag("%s of %s: %s", method_names[method], range->name,
				  done < 0 ? strerror(-done) : "a short transfer");
			return 0;
		}
		if (write && remote(MEM_READ, address, back, range->size) != (long)range->size)
			return ktap_diag("reading back %s: %s", range->name, strerror(errno)), 0;
		if (memcmp(write ? back : local, write ? local : original, range->size))
			ok = 0, ktap_diag("%s of %s: the bytes differ from the child's", method_names[method], range->name);
		if (write)
			remote(MEM_WRITE, address, original, range->size);
	}
	return ok;
}

/*
 * The child: maps base pages, THP, hugetlb and secretmem, writes each, sends
 * their addresses, then waits for the parent to close the pipe.
 */
struct child_memory {
	struct region regions[3];
	const char *why[3];
	char *secret;
	int secret_errno;
};

static void child_main(int report, int wait_for)
{
	struct child_memory memory = { 0 };
	char byte;

	for (enum memory_kind kind = BASE_PAGES; kind <= HUGETLB; kind++) {
		memory.why[kind] = map_region(kind, 2, &memory.regions[kind]);
		if (!memory.why[kind])
			for (size_t i = 0; i < memory.regions[kind].size; i++)
				memory.regions[kind].addr[i] = expected_byte(i, 0);
	}
#ifdef __NR_memfd_secret
	int secret = syscall(__NR_memfd_secret, 0);

	if (secret >= 0 && ftruncate(secret, page_size()) == 0) {
		memory.secret = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, secret, 0);
		if (memory.secret == MAP_FAILED)
			memory.secret = NULL, memory.secret_errno = errno;
		else
			memset(memory.secret, 0x77, page_size());
	} else {
		memory.secret_errno = errno;
	}
#else
	memory.secret_errno = ENOSYS;
#endif
	write(report, &memory, sizeof(memory));
	read(wait_for, &byte, 1);
	_exit(0);
}

static void secretmem_refused(const struct child_memory *memory)
{
	static const enum method all[] = { MEM_READ, MEM_WRITE, VM_READV, VM_WRITEV, PEEKDATA, POKEDATA };
	char why[128], local[64];

	snprintf(why, sizeof(why), "no secretmem: memfd_secret: %s", strerror(memory->secret_errno));
	for (unsigned int i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		enum method method = all[i];
		int cross = method == VM_READV || method == VM_WRITEV;
		long done;

		if (!memory->secret || (cross && no_cross_memory_attach)) {
			ktap_skip(memory->secret ? no_cross_memory_attach : why, "secretmem: %s is refused",
				  method_names[method]);
			continue;
		}
		memset(local, 0x11, sizeof(local));
		done = remote(method, memory->secret, local, sizeof(long));
		if (done >= 0)
			ktap_diag("%s of secretmem did %ld bytes", method_names[method], done);
		ktap_result(done < 0, "secretmem: %s is refused", method_names[method]);
	}
}

int main(void)
{
	struct child_memory memory;
	int report[2], hold[2], status;
	struct pin_counters before = pin_counters();
	char path[64];

	ktap_plan(3 * METHODS + 6 + 1);
	pipe(report);
	pipe(hold);
	child = fork();
	if (child == 0) {
		close(hold[1]);
		child_main(report[1], hold[0]);
	}
	close(hold[0]);
	if (read(report[0], &memory, sizeof(memory)) != sizeof(memory))
		return ktap_diag("the child did not report its memory"), 1;
	snprintf(path, sizeof(path), "/proc/%d/mem", child);
	child_mem = open(path, O_RDWR);
	if (ptrace(PTRACE_SEIZE, child, NULL, NULL) || ptrace(PTRACE_INTERRUPT, child, NULL, NULL) ||
	    waitpid(child, &status, 0) != child)
		ktap_diag("ptrace: %s", strerror(errno));
	struct iovec probe = { &status, 1 }, remote_probe = { memory.regions[BASE_PAGES].addr, 1 };
	if (process_vm_readv(child, &probe, 1, &remote_probe, 1, 0) < 0 && errno == ENOSYS)
		no_cross_memory_attach = "no process_vm_readv: CONFIG_CROSS_MEMORY_ATTACH is off";

	for (enum memory_kind kind = BASE_PAGES; kind <= HUGETLB; kind++) {
		for (enum method method = MEM_READ; method < METHODS; method++) {
			const char *name = memory_kind_names[kind];
			const char *why = memory.why[kind];

			if (!why && (method == VM_READV || method == VM_WRITEV))
				why = no_cross_memory_attach;
			if (why) {
				ktap_skip(why, "%s: %s at the first, unaligned, boundary-crossing and last bytes", name,
					  method_names[method]);
				continue;
			}
			ktap_result(each_range(method, &memory.regions[kind]),
				    "%s: %s at the first, unaligned, boundary-crossing and last bytes", name,
				    method_names[method]);
		}
	}
	secretmem_refused(&memory);
	ptrace(PTRACE_DETACH, child, NULL, NULL);
	close(hold[1]);
	waitpid(child, &status, 0);
	long held = pins_back_since(before, 10);
	if (held)
		ktap_diag("%ld pins held after the child exited", held);
	ktap_result(held == 0, "no pin is left once the remote accesses end");
	return ktap_exit();
}

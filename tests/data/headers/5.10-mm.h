/* From linux-source-5.10 5.10.262-1 (Debian's /usr/src tarball), include/linux/mm.h: the function exact_pincount_order reads. */
static inline bool hpage_pincount_available(struct page *page)
{
	/*
	 * Can the page->hpage_pinned_refcount field be used? That field is in
	 * the 3rd page of the compound page, so the smallest (2-page) compound
	 * pages cannot support it.
	 */
	page = compound_head(page);
	return PageCompound(page) && compound_order(page) > 1;
}

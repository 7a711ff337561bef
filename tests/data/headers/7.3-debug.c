/* From linux-source-7.3 7.3.4-1~bpo13+1, mm/debug.c: __dump_page(), which prints every page with its folio. */
static void __dump_page(const struct page *page)
{
	struct page_snapshot ps;

	snapshot_page(&ps, page);
	if (!snapshot_page_is_faithful(&ps))
		pr_warn("page does not match folio\n");

	__dump_folio(&ps.folio_snapshot, &ps.page_snapshot, ps.pfn, ps.idx);
}

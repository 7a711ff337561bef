"""gupvm: put the kernel's get_user_pages()/pin_user_pages() machinery under real test."""

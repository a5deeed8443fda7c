"""What the pages and the admin do to studies and readings; views stay thin."""

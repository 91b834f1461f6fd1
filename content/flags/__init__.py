"""Lead flags: the services, the lead card's posts and marketing's list (/content/flags/)."""

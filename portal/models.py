# SiteSettings arrives with the purchases and billing issues.

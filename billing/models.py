# Card, Subscription and WebhookEvent arrive with the rest of the billing issue.

"""Payment providers (Stripe Checkout, the local sandbox) and the webhook inbox."""

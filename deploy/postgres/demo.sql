-- Demo data for deploy/compose.yaml: the `shop` database that deploy/checks.yaml
-- monitors. The postgres image runs this once, when its volume is first created
-- (/docker-entrypoint-initdb.d). orders and customers pass every check; payments
-- is three days stale, so its freshness alert fires (docs/deploy.md).
\set ON_ERROR_STOP on
-- psql 15+: the reader's password comes from the container's environment.
\getenv dqmon_password DQMON_DB_PASSWORD

CREATE TABLE public.customers (
    customer_id integer PRIMARY KEY,
    email       text,
    country     text,
    signed_up   timestamptz NOT NULL
);
INSERT INTO public.customers
SELECT g, 'customer' || g || '@example.com', (ARRAY['DE', 'FR', 'US', 'JP'])[1 + g % 4],
       now() - g * interval '5 minutes'
FROM generate_series(1, 500) AS g;

CREATE TABLE public.orders (
    order_id    integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES public.customers,
    amount      numeric(12, 2),
    status      text NOT NULL,
    email       text,
    created_at  timestamptz NOT NULL,
    shipped_at  timestamptz,
    promised_at timestamptz
);
-- 5,000 orders over the last ~42 hours, newest first; 25 emails (0.5%) are malformed,
-- which the warning-level email_format check (min_ratio 0.99) tolerates; 5 shipped late.
INSERT INTO public.orders
SELECT g,
       1 + g % 500,
       1.50 + g % 200,
       (ARRAY['pending', 'paid', 'shipped', 'cancelled'])[1 + g % 4],
       CASE WHEN g % 200 = 0 THEN 'not-an-email' ELSE 'buyer' || g || '@example.com' END,
       now() - g * interval '30 seconds',
       CASE WHEN g % 4 = 2 THEN now() - g * interval '30 seconds'
                                + CASE WHEN g <= 20 THEN interval '3 days' ELSE interval '1 day' END
       END,
       now() - g * interval '30 seconds' + interval '2 days'
FROM generate_series(1, 5000) AS g;
-- Rows the checks' `where` leaves out.
INSERT INTO public.orders
SELECT 100000 + g, 1, -1, 'test', 'qa', now(), NULL, NULL FROM generate_series(1, 50) AS g;

CREATE TABLE public.payments (
    payment_id integer PRIMARY KEY,
    order_id   integer NOT NULL,
    amount     numeric(12, 2) NOT NULL,
    paid_at    timestamptz NOT NULL
);
INSERT INTO public.payments
SELECT g, g, 1.50 + g % 200, now() - interval '3 days' - g * interval '1 minute'
FROM generate_series(1, 1000) AS g;

ANALYZE;

-- dqmon's own login: read-only, SELECT only (`psql -v dqmon_role=NAME` renames it).
\if :{?dqmon_role}
\else
    \set dqmon_role dqmon
\endif
CREATE ROLE :"dqmon_role" LOGIN PASSWORD :'dqmon_password';
ALTER ROLE :"dqmon_role" SET default_transaction_read_only = on;
GRANT USAGE ON SCHEMA public TO :"dqmon_role";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"dqmon_role";

select id, customer_id, status from {{ ref('raw_orders') }}

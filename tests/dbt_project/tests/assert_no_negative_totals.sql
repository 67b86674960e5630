-- Singular test: an order's payments never add up to less than zero (orders 3 and 5 do).
select id, total_amount from {{ ref('order_payments') }} where total_amount < 0

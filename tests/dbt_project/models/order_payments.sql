select o.id, o.status, coalesce(sum(p.amount), 0) as total_amount
from {{ ref('orders') }} as o
left join {{ source('shop', 'payments') }} as p on p.order_id = o.id
group by o.id, o.status

-- Singular test that cannot run: the column does not exist (dbt reports status "error").
select id from {{ ref('order_payments') }} where no_such_column is null

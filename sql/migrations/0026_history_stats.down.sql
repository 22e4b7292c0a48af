DROP STATISTICS IF EXISTS walhook.delivery_company_webhook_stats;

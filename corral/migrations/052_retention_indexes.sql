-- 052 retention: the housekeeping loop deletes old notifications and webhook deliveries oldest first, in
-- batches; these indexes let each batch find its rows without scanning the whole table.
CREATE INDEX idx_notifications_created ON notifications(created_at);
CREATE INDEX idx_webhook_deliveries_created ON webhook_deliveries(created_at);

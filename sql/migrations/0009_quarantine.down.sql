DROP TABLE walhook.capture_quarantine;

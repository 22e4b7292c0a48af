DROP TABLE walhook.capture_position;

DROP TABLE walhook.replica;

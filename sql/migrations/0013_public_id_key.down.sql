DROP TABLE walhook.id_key;

DROP TABLE IF EXISTS walhook.login_code;

DROP PROCEDURE IF EXISTS sell_and_commit;

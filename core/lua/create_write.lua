-- Creates a file and writes its first data in one script: create.lua's
-- work, then write.lua's (a writeback mount's deferred create, sent with
-- what the file gathered at its first flush: a small file's create and
-- data cost one script's fixed cost, not two).
-- KEYS: create.lua's six (SB, FREEZE, DIR:parent, INODE:parent,
--       INODE:new, OPEN:new), then write.lua's after its first three
--       (CHANGED, then per piece its block and its TMP key)
-- ARGV: 1 how many of the rest are create.lua's (c), then create.lua's c
--       arguments, then write.lua's
-- Returns {create.lua's reply, '' or, the data refused, the refusal
-- ("<code> <message>"), the file's fields when write.lua's flags asked
-- for them and the data was written, else false}: the file stands when
-- only its data was refused, as after the two scripts in turn (the client
-- tells the two apart). The outcome record keeps the first two. The
-- create refused: that error, nothing written, and the data's TMP keys
-- gone (but for FROZEN and COW: the client sends the script again).
local c = tonumber(ARGV[1])
if not c or c < 1 or c + 1 > #ARGV or #KEYS < 6 then
  fail('EINVAL', 'malformed create_write arguments')
end
local ck = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]}
local wk = {KEYS[1], KEYS[2], KEYS[5]}
for i = 7, #KEYS do
  wk[#wk + 1] = KEYS[i]
end
local ca, wa = {}, {}
for i = 2, #ARGV do
  if i <= c + 1 then
    ca[#ca + 1] = ARGV[i]
  else
    wa[#wa + 1] = ARGV[i]
  end
end
-- (Redis's pcall turns an error {err = text}, fail's, into its text)
local ok, created, record, made = pcall(create_node, ck, ca)
if not ok then
  local e = tostring(created)
  if string.sub(e, 1, 7) ~= 'FROZEN ' and string.sub(e, 1, 4) ~= 'COW ' then
    drop_write_temps(wk, wa)
  end
  fail(e)
end
local wrote, reply = pcall(write_pieces, wk, wa, made)
local refusal = wrote and '' or tostring(reply)
local fields = wrote and type(reply[2]) == 'table' and reply[2] or false
return {created, refusal, fields}, {record or created, refusal}

bind ${REDIS_HOST}
port ${REDIS_PORT}
protected-mode no
tcp-backlog 511
timeout 0
daemonize no
supervised systemd
databases 16
save 900 1
dbfilename dump.rdb
appendonly yes
appendfilename "appendonly.aof"

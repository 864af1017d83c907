port 6379
bind 0.0.0.0
protected-mode yes
dir /data
logfile /data/redis-${HOST_PORT}.log
dbfilename dump-${HOST_PORT}.rdb
requirepass ${REDIS_PASSWORD}
masterauth ${REDIS_PASSWORD}
appendonly yes
appendfsync everysec
save 900 1
maxmemory-policy allkeys-lru
replica-announce-ip ${PUBLIC_IP}
replica-announce-port ${HOST_PORT}
loadmodule /opt/redis-stack/lib/modules/rejson.so